import { hostname } from 'node:os';
import { mariadb } from '../../lib/databases/rules/index.ts';
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
  troveError,
  userLabel,
} from './admin.ts';
import type { DatabaseInfo, DatabaseSpec, UserAttributes, UserInfo, UserSpec } from './manager.ts';
import {
  dbPatternCovers,
  ER_NONEXISTING_GRANT,
  endSessions,
  grantPattern,
  grantTarget,
  id,
  type MariaDbSession,
} from './mariadb-session.ts';

// Trove's databases, users, access and root on MariaDB (also Trove's "mysql"). A user is the
// account name@host (host is a MariaDB host pattern, '%' by default); access to a database is
// ALL PRIVILEGES ON db.*; root is root@'%', while the agent keeps root@localhost over the socket.

const DATABASE = mariadb.database;
const USER = mariadb.user;

interface Account {
  name: string;
  host: string;
}

export async function listDatabases(s: MariaDbSession): Promise<DatabaseInfo[]> {
  const rows = await s.rows(
    'SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA',
  );
  return rows
    .map((r) => ({
      name: String(r.SCHEMA_NAME),
      character_set: String(r.DEFAULT_CHARACTER_SET_NAME),
      collate: String(r.DEFAULT_COLLATION_NAME),
    }))
    .filter((db) => !isReserved(db.name, DATABASE))
    .sort(compareNames);
}

export async function createDatabases(s: MariaDbSession, dbs: DatabaseSpec[]): Promise<void> {
  const specs = checkList(dbs, 'databases').map((db) => ({
    name: checkName(db?.name, DATABASE),
    character_set: optionalText(db?.character_set, 'character_set'),
    collate: optionalText(db?.collate, 'collate'),
  }));
  checkDistinct(
    specs.map((db) => db.name),
    'Database',
  );
  const existing = await databaseNames(s);
  for (const { name } of specs) {
    if (existing.has(name)) {
      throw troveError('DatabaseAlreadyExists', `A database with the name "${name}" already exists.`);
    }
  }
  const options = [];
  for (const db of specs) options.push(await charsetClause(s, db.character_set, db.collate));
  const created: string[] = [];
  try {
    for (const [i, db] of specs.entries()) {
      await s.run(`CREATE DATABASE ${id(db.name)}${options[i]}`);
      created.push(db.name);
    }
  } catch (err) {
    for (const name of created) await s.run(`DROP DATABASE IF EXISTS ${id(name)}`).catch(() => {});
    throw err;
  }
}

export async function deleteDatabase(s: MariaDbSession, name: string): Promise<void> {
  const db = checkName(name, DATABASE);
  await requireDatabases(s, [db]);
  await s.run(`DROP DATABASE ${id(db)}`);
  // MariaDB keeps grants on a dropped database: a new database of that name would inherit them.
  for (const g of await s.rows('SELECT User, Host FROM mysql.db WHERE Db = ?', [grantPattern(db)])) {
    await s.runUnless([ER_NONEXISTING_GRANT], `REVOKE ALL PRIVILEGES ON ${grantTarget(db)} FROM ?@?`, [
      g.User,
      g.Host,
    ]);
  }
}

export async function listUsers(s: MariaDbSession): Promise<UserInfo[]> {
  const rows = await s.rows("SELECT User, Host FROM mysql.user WHERE is_role = 'N'");
  const accounts = rows
    .map((r) => ({ name: String(r.User), host: String(r.Host) }))
    .filter((a) => a.name !== '' && !isReserved(a.name, USER));
  const access = await accessOf(s);
  return accounts.map((a) => ({ ...a, databases: access(a) })).sort(compareUsers);
}

export async function getUser(s: MariaDbSession, name: string, host: string): Promise<UserInfo | undefined> {
  const account = checkAccount(name, host);
  if (!(await exists(s, account))) return undefined;
  return { ...account, databases: (await accessOf(s))(account) };
}

export async function createUsers(s: MariaDbSession, users: UserSpec[]): Promise<void> {
  const specs = checkList(users, 'users').map((u) => ({
    ...checkAccount(u?.name, u?.host),
    password: checkPassword(u?.password),
    databases: checkList(u.databases ?? [], 'databases').map((db) => checkName(db?.name, DATABASE)),
  }));
  checkDistinct(
    specs.map((u) => userLabel(u.name, u.host)),
    'User',
  );
  for (const u of specs) {
    if (await exists(s, u)) {
      throw troveError(
        'UserAlreadyExists',
        `A user with the name "${userLabel(u.name, u.host)}" already exists.`,
      );
    }
  }
  await requireDatabases(s, [...new Set(specs.flatMap((u) => u.databases))]);
  const created: Account[] = [];
  try {
    for (const u of specs) {
      await s.run('CREATE USER ?@? IDENTIFIED BY ?', [u.name, u.host, u.password], [u.password]);
      created.push(u);
      for (const db of u.databases)
        await s.run(`GRANT ALL PRIVILEGES ON ${grantTarget(db)} TO ?@?`, [u.name, u.host]);
    }
  } catch (err) {
    for (const u of created) await s.run('DROP USER IF EXISTS ?@?', [u.name, u.host]).catch(() => {});
    throw err;
  }
}

export async function deleteUser(s: MariaDbSession, name: string, host: string): Promise<void> {
  const account = await requireUser(s, name, host);
  await s.run('DROP USER ?@?', [account.name, account.host]);
  await endSessions(s, account.name, account.host);
}

export async function updateUser(
  s: MariaDbSession,
  name: string,
  host: string,
  attrs: UserAttributes,
): Promise<void> {
  const account = await requireUser(s, name, host);
  if (attrs?.name === undefined && attrs?.password === undefined && attrs?.host === undefined) {
    throw troveError('BadRequest', 'Nothing to update: give a new name, password or host.');
  }
  const target = checkAccount(attrs.name ?? account.name, attrs.host ?? account.host);
  const password = attrs.password === undefined ? undefined : checkPassword(attrs.password);
  const renamed = target.name !== account.name || target.host !== account.host;
  if (renamed) {
    if (await exists(s, target)) {
      throw troveError(
        'UserAlreadyExists',
        `A user with the name "${userLabel(target.name, target.host)}" already exists.`,
      );
    }
    // RENAME USER carries the account's grants over to the new name and host.
    await s.run('RENAME USER ?@? TO ?@?', [account.name, account.host, target.name, target.host]);
  }
  if (password !== undefined) {
    await s.run('ALTER USER ?@? IDENTIFIED BY ?', [target.name, target.host, password], [password]);
  }
  // The old identity is gone: its open sessions must not outlive it.
  if (renamed) await endSessions(s, account.name, account.host);
}

export async function changePasswords(
  s: MariaDbSession,
  users: { name: string; host?: string; password: string }[],
): Promise<void> {
  const specs = [];
  for (const u of checkList(users, 'users')) {
    specs.push({ ...(await requireUser(s, u?.name, u?.host)), password: checkPassword(u?.password) });
  }
  for (const u of specs) {
    await s.run('ALTER USER ?@? IDENTIFIED BY ?', [u.name, u.host, u.password], [u.password]);
  }
}

export async function listAccess(s: MariaDbSession, name: string, host: string): Promise<{ name: string }[]> {
  const account = await requireUser(s, name, host);
  return (await accessOf(s))(account);
}

export async function grantAccess(
  s: MariaDbSession,
  name: string,
  host: string,
  databases: string[],
): Promise<void> {
  const account = await requireUser(s, name, host);
  const dbs = checkList(databases, 'databases').map((db) => checkName(db, DATABASE));
  await requireDatabases(s, dbs);
  for (const db of dbs) {
    await s.run(`GRANT ALL PRIVILEGES ON ${grantTarget(db)} TO ?@?`, [account.name, account.host]);
  }
}

export async function revokeAccess(
  s: MariaDbSession,
  name: string,
  host: string,
  database: string,
): Promise<void> {
  const account = await requireUser(s, name, host);
  const db = checkName(database, DATABASE);
  const granted = await s.rows('SELECT 1 FROM mysql.db WHERE User = ? AND Host = ? AND Db = ?', [
    account.name,
    account.host,
    grantPattern(db),
  ]);
  // A grant left over from a dropped database can still be revoked; otherwise the database must exist.
  if (!granted.length) await requireDatabases(s, [db]);
  await s.runUnless([ER_NONEXISTING_GRANT], `REVOKE ALL PRIVILEGES ON ${grantTarget(db)} FROM ?@?`, [
    account.name,
    account.host,
  ]);
  // A session keeps the privileges of its current database until it changes database: end them.
  await endSessions(s, account.name, account.host);
}

/**
 * Trove's root is root@'%' with a password. The passwordless root rows mariadb-install-db may
 * create for 127.0.0.1, ::1 and the host name would shadow it for those hosts (pitfall 4): every
 * root row but the agent's socket-only root@localhost goes.
 */
export async function enableRoot(s: MariaDbSession, password: string): Promise<void> {
  checkPassword(password);
  const hosts = (await s.rows("SELECT Host FROM mysql.user WHERE User = 'root'")).map((r) => String(r.Host));
  for (const host of new Set([...hosts, '127.0.0.1', '::1', hostname().toLowerCase()])) {
    if (host !== 'localhost' && host !== '%') await s.run('DROP USER IF EXISTS ?@?', ['root', host]);
  }
  await s.run("CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ?", [password], [password]);
  await s.run("ALTER USER 'root'@'%' IDENTIFIED BY ?", [password], [password]);
  await s.run("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION");
}

export async function disableRoot(s: MariaDbSession): Promise<void> {
  await s.run("DROP USER IF EXISTS 'root'@'%'");
  await endSessions(s, 'root', '%');
}

/** prepare's databases and users: created when missing, passwords set again, so prepare can repeat. */
export async function provisionAccounts(
  s: MariaDbSession,
  databases: DatabaseSpec[],
  users: UserSpec[],
  rootPassword: string | undefined,
): Promise<void> {
  for (const db of databases) {
    const name = checkName(db.name, DATABASE);
    const options = await charsetClause(s, db.character_set, db.collate);
    await s.run(`CREATE DATABASE IF NOT EXISTS ${id(name)}${options}`);
  }
  for (const user of users) {
    const { name, host } = checkAccount(user.name, user.host);
    const password = checkPassword(user.password);
    await s.run('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [name, host, password], [password]);
    await s.run('ALTER USER ?@? IDENTIFIED BY ?', [name, host, password], [password]);
    for (const db of user.databases ?? []) {
      await s.run(`GRANT ALL PRIVILEGES ON ${grantTarget(checkName(db.name, DATABASE))} TO ?@?`, [
        name,
        host,
      ]);
    }
  }
  if (rootPassword) await enableRoot(s, rootPassword);
}

function checkAccount(name: unknown, host: unknown): Account {
  return { name: checkName(name, USER), host: checkHost(host, mariadb) };
}

async function exists(s: MariaDbSession, a: Account): Promise<boolean> {
  const rows = await s.rows("SELECT 1 FROM mysql.user WHERE User = ? AND Host = ? AND is_role = 'N'", [
    a.name,
    a.host,
  ]);
  return rows.length > 0;
}

async function requireUser(s: MariaDbSession, name: unknown, host: unknown): Promise<Account> {
  const account = checkAccount(name, host);
  if (!(await exists(s, account))) {
    throw troveError(
      'UserNotFound',
      `User ${userLabel(account.name, account.host)} cannot be found on the instance.`,
    );
  }
  return account;
}

/** Every database name, exactly (information_schema compares names case-insensitively). */
async function databaseNames(s: MariaDbSession): Promise<Set<string>> {
  const rows = await s.rows('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA');
  return new Set(rows.map((r) => String(r.SCHEMA_NAME)));
}

async function requireDatabases(s: MariaDbSession, names: string[]): Promise<void> {
  const existing = await databaseNames(s);
  for (const name of names) {
    if (!existing.has(name))
      throw troveError('DatabaseNotFound', `Database ${name} cannot be found on the instance.`);
  }
}

/** For each account, the visible databases its database-level grants cover. */
async function accessOf(s: MariaDbSession): Promise<(a: Account) => { name: string }[]> {
  const grants = await s.rows('SELECT User, Host, Db FROM mysql.db');
  const dbs = await listDatabases(s);
  return (a) =>
    dbs
      .filter((db) =>
        grants.some((g) => g.User === a.name && g.Host === a.host && dbPatternCovers(String(g.Db), db.name)),
      )
      .map((db) => ({ name: db.name }));
}

/** ` CHARACTER SET x COLLATE y`, with names MariaDB knows (checked first, so nothing is half-created). */
async function charsetClause(s: MariaDbSession, charset?: string, collate?: string): Promise<string> {
  let clause = '';
  if (charset) {
    const rows = await s.rows(
      'SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME = ?',
      [charset],
    );
    if (!rows.length) throw troveError('BadRequest', `Unknown character set ${charset}.`);
    clause += ` CHARACTER SET ${id(String(rows[0]?.CHARACTER_SET_NAME))}`;
  }
  if (collate) {
    const rows = await s.rows(
      'SELECT COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?',
      [collate],
    );
    const found = rows[0];
    if (!found) throw troveError('BadRequest', `Unknown collation ${collate}.`);
    if (charset && String(found.CHARACTER_SET_NAME).toLowerCase() !== charset.toLowerCase()) {
      throw troveError('BadRequest', `Collation ${collate} does not belong to character set ${charset}.`);
    }
    clause += ` COLLATE ${id(String(found.COLLATION_NAME))}`;
  }
  return clause;
}
