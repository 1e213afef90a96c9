import { BadRequest } from '../errors.ts';
import { isSafeText } from '../text.ts';

// Trove's per-datastore name and password rules (its guest models) and reserved names
// (ignore_dbs / ignore_users). Whatever passes is still quoted by the engine driver's own
// escaping on the guest: these rules keep names usable, they are not the injection defence.

export type SqlManager = 'mysql' | 'mariadb' | 'postgresql';

interface Rules {
  maxDatabase: number;
  maxUser: number;
  database: { test(value: string): boolean };
  user: { test(value: string): boolean };
  reservedDatabases: string[];
  reservedUsers: string[];
}

/** Control and bidirectional-override characters have no place in names or passwords. */
export function hasControlCharacter(value: string): boolean {
  return !isSafeText(value);
}

// No control characters or backslashes anywhere; the rest is for the engine to quote.
const PRINTABLE = { test: (v: string) => v.length > 0 && !hasControlCharacter(v) && !v.includes('\\') };

const MYSQL: Rules = {
  maxDatabase: 64,
  maxUser: 32,
  // Trove's MySQLSchema: letters, digits, '_' and '-', with spaces, '?', '#' or '@' only inside.
  database: /^[A-Za-z0-9_-]+[\s?#@]*[A-Za-z0-9_-]+$|^[A-Za-z0-9_-]$/,
  user: PRINTABLE,
  reservedDatabases: [
    'mysql',
    'information_schema',
    'performance_schema',
    'sys',
    'lost+found',
    '#mysql50#lost+found',
  ],
  reservedUsers: ['root', 'os_admin', 'mariadb.sys', 'mysql', 'debian-sys-maint', 'PUBLIC'],
};

const POSTGRESQL: Rules = {
  maxDatabase: 63,
  maxUser: 63,
  database: PRINTABLE,
  user: PRINTABLE,
  reservedDatabases: ['postgres', 'template0', 'template1', 'os_admin'],
  reservedUsers: ['postgres', 'os_admin', 'root'],
};

export function rulesFor(manager: string): Rules {
  return manager === 'postgresql' ? POSTGRESQL : MYSQL;
}

export function checkDatabaseName(manager: string, name: unknown): string {
  const rules = rulesFor(manager);
  if (typeof name !== 'string' || name.length === 0) throw new BadRequest('Database name is required.');
  if (name.length > rules.maxDatabase) {
    throw new BadRequest(`Database name '${name}' is longer than ${rules.maxDatabase} characters.`);
  }
  if (!rules.database.test(name) || name.trim() !== name)
    throw new BadRequest(`'${name}' is not a valid database name.`);
  if (name.toLowerCase().startsWith('pg_') && manager === 'postgresql') {
    throw new BadRequest(`'${name}' is not a valid database name.`);
  }
  if (isReservedDatabase(manager, name)) throw new BadRequest(`'${name}' is a reserved database name.`);
  return name;
}

export function checkUserName(manager: string, name: unknown): string {
  const rules = rulesFor(manager);
  if (typeof name !== 'string' || name.length === 0) throw new BadRequest('User name is required.');
  if (name.length > rules.maxUser)
    throw new BadRequest(`User name '${name}' is longer than ${rules.maxUser} characters.`);
  if (!rules.user.test(name) || name.trim() !== name || name.includes('@')) {
    throw new BadRequest(`'${name}' is not a valid user name.`);
  }
  if (isReservedUser(manager, name)) throw new BadRequest(`'${name}' is a reserved user name.`);
  return name;
}

/** MariaDB host patterns ('%', '10.0.%', 'db.example'), PostgreSQL hosts and CIDRs. */
export function checkHost(host: unknown): string {
  if (host === undefined || host === null || host === '') return '%';
  if (typeof host !== 'string' || host.length > 255 || !/^[A-Za-z0-9._%:/-]+$/.test(host)) {
    throw new BadRequest(`'${String(host)}' is not a valid host.`);
  }
  return host;
}

export function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length === 0) throw new BadRequest('Password is required.');
  if (password.length > 255 || hasControlCharacter(password))
    throw new BadRequest('The password is not valid.');
  return password;
}

export function isReservedDatabase(manager: string, name: string): boolean {
  return rulesFor(manager).reservedDatabases.includes(name.toLowerCase());
}

export function isReservedUser(manager: string, name: string): boolean {
  return rulesFor(manager)
    .reservedUsers.map((u) => u.toLowerCase())
    .includes(name.toLowerCase());
}

/**
 * `name` or `name@host` from the URL; the host defaults to '%'. The edge (lib/http/edge.ts) has
 * decoded the path parameter exactly once: decoding again would turn `a%2541` into another name.
 */
export function parseUserRef(manager: string, decoded: string): { name: string; host: string } {
  const at = decoded.lastIndexOf('@');
  const name = at >= 0 ? decoded.slice(0, at) : decoded;
  const host = at >= 0 ? decoded.slice(at + 1) : '%';
  return { name: checkUserName(manager, name), host: checkHost(host) };
}
