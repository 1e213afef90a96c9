import type pg from 'pg';
import { postgresql } from '../../lib/databases/rules/index.ts';
import {
  checkDistinct,
  checkHost,
  checkList,
  checkName,
  checkPassword,
  compareNames,
  compareUsers,
  isReserved,
  optionalText,
  redact,
  troveError,
  userLabel,
} from './admin.ts';
import type { DatabaseInfo, DatabaseSpec, UserAttributes, UserInfo, UserSpec } from './manager.ts';
import type { PgAccessRules } from './pg-access-rules.ts';
import { waitFor } from './process.ts';

// Trove's databases, users, access and root on PostgreSQL. A user is a login role; its host lives
// in pg_hba.conf (pg-access-rules.ts). Access to a database is CONNECT, CREATE and TEMPORARY on it
// plus USAGE and CREATE on its public schema; PUBLIC loses its default CONNECT on every database
// the agent creates, so access means something. Root is the postgres superuser with a password.

const DATABASE = postgresql.database;
const USER = postgresql.user;
const checkPgHost = (host: unknown) => checkHost(host, postgresql);

/** The superuser session on database postgres, the way to others, and the access rules. */
export interface PgAdmin {
  client: pg.Client;
  connect(database: string): Promise<pg.Client>;
  rules: PgAccessRules;
}

interface Account {
  name: string;
  host: string;
}

export async function listDatabases({ client }: PgAdmin): Promise<DatabaseInfo[]> {
  const { rows } = await client.query<{ datname: string; charset: string; datcollate: string }>(
    'SELECT datname, pg_encoding_to_char(encoding) AS charset, datcollate FROM pg_database WHERE NOT datistemplate',
  );
  return rows
    .filter((r) => !isReserved(r.datname, DATABASE))
    .map((r) => ({ name: r.datname, character_set: r.charset, collate: r.datcollate }))
    .sort(compareNames);
}

export async function createDatabases(admin: PgAdmin, dbs: DatabaseSpec[]): Promise<void> {
  const specs = checkList(dbs, 'databases').map((db) => ({
    name: checkName(db?.name, DATABASE),
    character_set: optionalText(db?.character_set, 'character_set'),
    collate: optionalText(db?.collate, 'collate'),
  }));
  checkDistinct(
    specs.map((db) => db.name),
    'Database',
  );
  for (const name of await existingDatabases(
    admin,
    specs.map((db) => db.name),
  )) {
    throw troveError('DatabaseAlreadyExists', `A database with the name "${name}" already exists.`);
  }
  for (const { character_set } of specs) {
    if (!character_set) continue;
    const { rows } = await admin.client.query('SELECT pg_char_to_encoding($1) >= 0 AS known', [
      character_set,
    ]);
    if (!rows[0]?.known) throw troveError('BadRequest', `Unknown character set ${character_set}.`);
  }
  const created: string[] = [];
  try {
    for (const db of specs) {
      await createDatabase(admin, db);
      created.push(db.name);
    }
  } catch (err) {
    for (const name of created) await dropDatabase(admin, name).catch(() => {});
    throw err;
  }
}

export async function deleteDatabase(admin: PgAdmin, name: string): Promise<void> {
  const db = checkName(name, DATABASE);
  await requireDatabases(admin, [db]);
  await dropDatabase(admin, db);
}

export async function listUsers(admin: PgAdmin): Promise<UserInfo[]> {
  const { rows } = await admin.client.query<{ rolname: string }>(
    'SELECT rolname FROM pg_roles WHERE rolcanlogin',
  );
  const access = await accessOf(admin);
  const { hosts } = await admin.rules.load();
  return rows
    .filter((r) => !isReserved(r.rolname, USER))
    .map((r) => ({ name: r.rolname, host: hosts.get(r.rolname) ?? '%', databases: access(r.rolname) }))
    .sort(compareUsers);
}

export async function getUser(admin: PgAdmin, name: string, host: string): Promise<UserInfo | undefined> {
  const account = { name: checkName(name, USER), host: checkPgHost(host) };
  if ((await hostOf(admin, account.name)) !== account.host) return undefined;
  return { ...account, databases: (await accessOf(admin))(account.name) };
}

export async function createUsers(admin: PgAdmin, users: UserSpec[]): Promise<void> {
  const specs = checkList(users, 'users').map((u) => ({
    name: checkName(u?.name, USER),
    host: checkPgHost(u?.host),
    password: checkPassword(u?.password),
    databases: checkList(u.databases ?? [], 'databases').map((db) => checkName(db?.name, DATABASE)),
  }));
  // A role name is unique whatever the host: PostgreSQL keeps one host per user.
  checkDistinct(
    specs.map((u) => u.name),
    'User',
  );
  for (const u of specs) {
    if (await roleExists(admin, u.name)) {
      throw troveError(
        'UserAlreadyExists',
        `A user with the name "${userLabel(u.name, u.host)}" already exists.`,
      );
    }
  }
  await requireDatabases(admin, [...new Set(specs.flatMap((u) => u.databases))]);
  // Host restrictions are in force before the role can log in at all.
  const rules = await admin.rules.load();
  const restricted = specs.filter((u) => u.host !== '%');
  if (restricted.length) {
    for (const u of restricted) rules.hosts.set(u.name, u.host);
    await admin.rules.apply(admin.client, rules);
  }
  const created: string[] = [];
  try {
    for (const u of specs) {
      const { client } = admin;
      await exec(
        client,
        `CREATE ROLE ${client.escapeIdentifier(u.name)} WITH LOGIN PASSWORD ${client.escapeLiteral(u.password)}`,
        [u.password],
      );
      created.push(u.name);
      for (const db of u.databases) await grant(admin, u.name, db);
    }
  } catch (err) {
    for (const name of created) await dropRole(admin, name).catch(() => {});
    if (restricted.length) {
      for (const u of restricted) rules.hosts.delete(u.name);
      await admin.rules.apply(admin.client, rules).catch(() => {});
    }
    throw err;
  }
}

export async function deleteUser(admin: PgAdmin, name: string, host: string): Promise<void> {
  const account = await requireUser(admin, name, host);
  const role = admin.client.escapeIdentifier(account.name);
  // No new sessions, then none left, then the role and what it holds (its objects go to postgres).
  await exec(admin.client, `ALTER ROLE ${role} NOLOGIN`);
  await endSessions(admin, account.name);
  await dropRole(admin, account.name);
  const rules = await admin.rules.load();
  if (rules.hosts.delete(account.name)) await admin.rules.apply(admin.client, rules);
}

export async function updateUser(
  admin: PgAdmin,
  name: string,
  host: string,
  attrs: UserAttributes,
): Promise<void> {
  const account = await requireUser(admin, name, host);
  if (attrs?.name === undefined && attrs?.password === undefined && attrs?.host === undefined) {
    throw troveError('BadRequest', 'Nothing to update: give a new name, password or host.');
  }
  const target = {
    name: attrs.name === undefined ? account.name : checkName(attrs.name, USER),
    host: attrs.host === undefined ? account.host : checkPgHost(attrs.host),
  };
  const password = attrs.password === undefined ? undefined : checkPassword(attrs.password);
  const renamed = target.name !== account.name;
  if (renamed && (await roleExists(admin, target.name))) {
    throw troveError(
      'UserAlreadyExists',
      `A user with the name "${userLabel(target.name, target.host)}" already exists.`,
    );
  }
  const { client } = admin;
  if (renamed || target.host !== account.host) {
    // The new name's restriction is in force before the rename, the old one's until after it.
    const rules = await admin.rules.load();
    if (target.host === '%') rules.hosts.delete(target.name);
    else rules.hosts.set(target.name, target.host);
    await admin.rules.apply(client, rules);
    if (renamed) {
      await exec(
        client,
        `ALTER ROLE ${client.escapeIdentifier(account.name)} RENAME TO ${client.escapeIdentifier(target.name)}`,
      );
      rules.hosts.delete(account.name);
      await admin.rules.apply(client, rules);
    }
  }
  if (password !== undefined) {
    await exec(
      client,
      `ALTER ROLE ${client.escapeIdentifier(target.name)} WITH PASSWORD ${client.escapeLiteral(password)}`,
      [password],
    );
  }
  // Sessions opened under the old name or from a host no longer allowed end with it.
  if (renamed || target.host !== account.host) await endSessions(admin, target.name);
}

export async function changePasswords(
  admin: PgAdmin,
  users: { name: string; host?: string; password: string }[],
): Promise<void> {
  const specs = [];
  for (const u of checkList(users, 'users')) {
    specs.push({ ...(await requireUser(admin, u?.name, u?.host)), password: checkPassword(u?.password) });
  }
  const { client } = admin;
  for (const u of specs) {
    await exec(
      client,
      `ALTER ROLE ${client.escapeIdentifier(u.name)} WITH PASSWORD ${client.escapeLiteral(u.password)}`,
      [u.password],
    );
  }
}

export async function listAccess(admin: PgAdmin, name: string, host: string): Promise<{ name: string }[]> {
  const account = await requireUser(admin, name, host);
  return (await accessOf(admin))(account.name);
}

export async function grantAccess(
  admin: PgAdmin,
  name: string,
  host: string,
  databases: string[],
): Promise<void> {
  const account = await requireUser(admin, name, host);
  const dbs = checkList(databases, 'databases').map((db) => checkName(db, DATABASE));
  await requireDatabases(admin, dbs);
  for (const db of dbs) await grant(admin, account.name, db);
}

export async function revokeAccess(
  admin: PgAdmin,
  name: string,
  host: string,
  database: string,
): Promise<void> {
  const account = await requireUser(admin, name, host);
  const db = checkName(database, DATABASE);
  await requireDatabases(admin, [db]);
  const { client } = admin;
  const [role, target] = [client.escapeIdentifier(account.name), client.escapeIdentifier(db)];
  await exec(client, `REVOKE CONNECT, CREATE, TEMPORARY ON DATABASE ${target} FROM ${role}`);
  // PUBLIC's default CONNECT would let the user straight back in (databases not created by the agent).
  await exec(client, `REVOKE CONNECT, TEMPORARY ON DATABASE ${target} FROM PUBLIC`);
  await onPublicSchema(
    admin,
    db,
    (c) => `REVOKE USAGE, CREATE ON SCHEMA public FROM ${c.escapeIdentifier(account.name)}`,
  );
  // REVOKE does not touch open sessions: those on this database end.
  await endSessions(admin, account.name, db);
}

/** Trove's PostgreSQL root is the postgres superuser: it gets the password and may log in over TCP. */
export async function enableRoot(admin: PgAdmin, password: string): Promise<void> {
  checkPassword(password);
  const { client } = admin;
  await exec(client, `ALTER ROLE postgres WITH PASSWORD ${client.escapeLiteral(password)}`, [password]);
  const rules = await admin.rules.load();
  rules.rootLogin = true;
  await admin.rules.apply(client, rules);
}

/** postgres loses its password and TCP login, and its TCP sessions end; the agent's socket login stays. */
export async function disableRoot(admin: PgAdmin): Promise<void> {
  const { client } = admin;
  const rules = await admin.rules.load();
  rules.rootLogin = false;
  await admin.rules.apply(client, rules);
  await exec(client, 'ALTER ROLE postgres WITH PASSWORD NULL');
  await terminate(
    admin,
    "SELECT pid FROM pg_stat_activity WHERE usename = 'postgres' AND client_addr IS NOT NULL AND pid <> pg_backend_pid()",
    [],
  );
}

/** prepare's databases and users: created when missing, passwords set again, so prepare can repeat. */
export async function provisionAccounts(
  admin: PgAdmin,
  databases: DatabaseSpec[],
  users: UserSpec[],
  rootPassword: string | undefined,
): Promise<void> {
  for (const db of databases) {
    const name = checkName(db.name, DATABASE);
    if (!(await existingDatabases(admin, [name])).length) await createDatabase(admin, { ...db, name });
  }
  const rules = await admin.rules.load();
  let hostsChanged = false;
  for (const user of users) {
    const name = checkName(user.name, USER);
    const host = checkPgHost(user.host);
    if ((rules.hosts.get(name) ?? '%') !== host) {
      if (host === '%') rules.hosts.delete(name);
      else rules.hosts.set(name, host);
      hostsChanged = true;
    }
  }
  if (hostsChanged) await admin.rules.apply(admin.client, rules);
  const { client } = admin;
  for (const user of users) {
    const password = checkPassword(user.password);
    const verb = (await roleExists(admin, user.name)) ? 'ALTER' : 'CREATE';
    await exec(
      client,
      `${verb} ROLE ${client.escapeIdentifier(user.name)} WITH LOGIN PASSWORD ${client.escapeLiteral(password)}`,
      [password],
    );
    for (const db of user.databases ?? []) await grant(admin, user.name, checkName(db.name, DATABASE));
  }
  if (rootPassword) await enableRoot(admin, rootPassword);
}

/** CREATE DATABASE takes no bind parameters and cannot run in a transaction (pitfall 6). */
async function createDatabase(admin: PgAdmin, db: DatabaseSpec): Promise<void> {
  const { client } = admin;
  const options = [
    db.character_set ? ` ENCODING ${client.escapeLiteral(db.character_set)}` : '',
    db.collate
      ? ` LC_COLLATE ${client.escapeLiteral(db.collate)} LC_CTYPE ${client.escapeLiteral(db.collate)}`
      : '',
    db.character_set || db.collate ? ' TEMPLATE template0' : '',
  ].join('');
  const target = client.escapeIdentifier(db.name);
  try {
    await exec(client, `CREATE DATABASE ${target}${options}`);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code === '42P04') {
      throw troveError('DatabaseAlreadyExists', `A database with the name "${db.name}" already exists.`);
    }
    // An unknown locale, or an encoding that does not fit it.
    if (code.startsWith('22') || code.startsWith('42'))
      throw troveError('BadRequest', (err as Error).message);
    throw err;
  }
  await exec(client, `REVOKE CONNECT, TEMPORARY ON DATABASE ${target} FROM PUBLIC`);
}

async function dropDatabase(admin: PgAdmin, name: string): Promise<void> {
  // FORCE ends the sessions still connected to it (PostgreSQL 13+).
  await exec(admin.client, `DROP DATABASE IF EXISTS ${admin.client.escapeIdentifier(name)} WITH (FORCE)`);
}

async function grant(admin: PgAdmin, role: string, database: string): Promise<void> {
  const { client } = admin;
  await exec(
    client,
    `GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ${client.escapeIdentifier(database)} TO ${client.escapeIdentifier(role)}`,
  );
  // Since 15, PUBLIC may not create in schema public: the grant is made inside that database.
  await onPublicSchema(
    admin,
    database,
    (c) => `GRANT USAGE, CREATE ON SCHEMA public TO ${c.escapeIdentifier(role)}`,
  );
}

async function onPublicSchema(
  admin: PgAdmin,
  database: string,
  statement: (c: pg.Client) => string,
): Promise<void> {
  const client = await admin.connect(database);
  try {
    const found = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = 'public'");
    if (found.rowCount) await exec(client, statement(client));
  } finally {
    await client.end();
  }
}

/**
 * Drops a role that may own objects and hold privileges in several databases: in each of them
 * (and in postgres, for privileges on databases) its objects go to postgres and its privileges
 * are dropped, then the role itself.
 */
async function dropRole(admin: PgAdmin, name: string): Promise<void> {
  const { rows } = await admin.client.query<{ datname: string }>(
    `SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
      WHERE s.refclassid = 'pg_authid'::regclass AND d.datallowconn
        AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
    [name],
  );
  for (const database of new Set(['postgres', ...rows.map((r) => r.datname)])) {
    const client = database === 'postgres' ? admin.client : await admin.connect(database);
    try {
      const role = client.escapeIdentifier(name);
      await exec(client, `REASSIGN OWNED BY ${role} TO postgres`);
      await exec(client, `DROP OWNED BY ${role}`);
    } finally {
      if (client !== admin.client) await client.end();
    }
  }
  await exec(admin.client, `DROP ROLE IF EXISTS ${admin.client.escapeIdentifier(name)}`);
}

/** Ends the role's client sessions (on `database` only, if given) and waits until they are gone. */
function endSessions(admin: PgAdmin, role: string, database?: string): Promise<void> {
  return terminate(
    admin,
    `SELECT pid FROM pg_stat_activity
      WHERE usename = $1 AND ($2::text IS NULL OR datname = $2) AND pid <> pg_backend_pid()`,
    [role, database ?? null],
  );
}

async function terminate(admin: PgAdmin, select: string, params: unknown[]): Promise<void> {
  const { client } = admin;
  const pids = (await client.query<{ pid: number }>(select, params)).rows.map((r) => r.pid);
  if (!pids.length) return;
  // With a timeout, pg_terminate_backend waits for the backend to exit (PostgreSQL 14+).
  for (const pid of pids) await client.query('SELECT pg_terminate_backend($1, 5000)', [pid]);
  await waitFor(
    'terminated sessions to end',
    async () => {
      const left = await client.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
      return left.rowCount ? undefined : true;
    },
    { timeoutMs: 10_000 },
  );
}

async function exec(client: pg.Client, sql: string, secrets: string[] = []): Promise<void> {
  try {
    await client.query(sql);
  } catch (err) {
    if (!secrets.length) throw err;
    const safe = new Error(
      `postgresql: ${redact(err instanceof Error ? err.message : String(err), secrets)}`,
    );
    throw Object.assign(safe, { code: (err as { code?: string }).code });
  }
}

async function roleExists({ client }: PgAdmin, name: string): Promise<boolean> {
  return !!(await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount;
}

/** The host of a login role, or undefined when there is no such user. */
async function hostOf(admin: PgAdmin, name: string): Promise<string | undefined> {
  const found = await admin.client.query('SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin', [name]);
  if (!found.rowCount) return undefined;
  return (await admin.rules.load()).hosts.get(name) ?? '%';
}

async function requireUser(admin: PgAdmin, name: unknown, host: unknown): Promise<Account> {
  const account = { name: checkName(name, USER), host: checkPgHost(host) };
  if ((await hostOf(admin, account.name)) !== account.host) {
    throw troveError(
      'UserNotFound',
      `User ${userLabel(account.name, account.host)} cannot be found on the instance.`,
    );
  }
  return account;
}

async function existingDatabases({ client }: PgAdmin, names: string[]): Promise<string[]> {
  const { rows } = await client.query<{ datname: string }>(
    'SELECT datname FROM pg_database WHERE datname = ANY($1::text[])',
    [names],
  );
  return rows.map((r) => r.datname);
}

async function requireDatabases(admin: PgAdmin, names: string[]): Promise<void> {
  const existing = new Set(await existingDatabases(admin, names));
  for (const name of names) {
    if (!existing.has(name))
      throw troveError('DatabaseNotFound', `Database ${name} cannot be found on the instance.`);
  }
}

/** For each role, the visible databases it was granted CONNECT on (explicitly, not through PUBLIC). */
async function accessOf({ client }: PgAdmin): Promise<(role: string) => { name: string }[]> {
  const { rows } = await client.query<{ rolname: string; datname: string }>(
    `SELECT r.rolname, d.datname FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a
       JOIN pg_roles r ON r.oid = a.grantee
      WHERE a.privilege_type = 'CONNECT' AND NOT d.datistemplate`,
  );
  return (role) =>
    rows
      .filter((r) => r.rolname === role && !isReserved(r.datname, DATABASE))
      .map((r) => ({ name: r.datname }))
      .sort(compareNames);
}
