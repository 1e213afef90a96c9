import mysql from 'mysql2/promise';
import { redact } from './admin.ts';
import { waitFor } from './process.ts';

// The agent's admin connection to MariaDB (root@localhost over the unix socket), and the pieces of
// MariaDB's account model the account code needs: host patterns, database patterns in grants, and
// ending the sessions of one account.

export type Row = mysql.RowDataPacket;

/** An error from the server, without the statement (mysql2 attaches it as `sql`, passwords included). */
export class MariaDbError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'MariaDbError';
  }
}

export const ER_NO_SUCH_THREAD = 1094;
export const ER_NONEXISTING_GRANT = 1141;

export class MariaDbSession {
  constructor(private readonly conn: mysql.Connection) {}

  /**
   * Runs one statement, its values escaped by mysql2 (`?` for literals; identifiers go through
   * `id()`): DDL takes no server-side parameters. `secrets` are blanked out of any error message.
   */
  async rows(sql: string, values: unknown[] = [], secrets: string[] = []): Promise<Row[]> {
    try {
      const [rows] = await this.conn.query(mysql.format(sql, values as mysql.SqlValue[]));
      return Array.isArray(rows) ? (rows as Row[]) : [];
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const errno = (err as { errno?: unknown }).errno;
      throw new MariaDbError(
        `mariadb: ${redact(message, secrets)}`,
        typeof errno === 'number' ? errno : undefined,
      );
    }
  }

  async run(sql: string, values: unknown[] = [], secrets: string[] = []): Promise<void> {
    await this.rows(sql, values, secrets);
  }

  /** Like run, but an error with one of `errnos` is taken as "already so". */
  async runUnless(errnos: number[], sql: string, values: unknown[] = []): Promise<void> {
    await this.run(sql, values).catch((err: unknown) => {
      if (!(err instanceof MariaDbError && err.errno !== undefined && errnos.includes(err.errno))) throw err;
    });
  }
}

/** A quoted identifier; a dot stays part of the name (mysql2's `??` would split `a.b` into two). */
export function id(name: string): string {
  return mysql.escapeId(name, true);
}

/**
 * The `db.*` of a GRANT or REVOKE for exactly one database: in a database-level grant `_` and `%`
 * are wildcards (a grant on `a_b` would also cover `axb`), so they and `\` are escaped.
 */
export function grantTarget(database: string): string {
  return `${id(grantPattern(database))}.*`;
}

/** The database as mysql.db's `Db` column holds a grant made by grantTarget. */
export function grantPattern(database: string): string {
  return database.replace(/[\\_%]/g, '\\$&');
}

/** Does a `Db` pattern of mysql.db (as grantTarget writes it, or a wildcard grant) cover `database`? */
export function dbPatternCovers(pattern: string, database: string): boolean {
  return likeRegExp(pattern, '').test(database);
}

/**
 * Does an account's host pattern match a client's host (an IP with skip-name-resolve, or
 * `localhost` for the socket)? `%` and `_` are wildcards, host names compare case-insensitively,
 * and `ip/netmask` is a network.
 */
export function hostCovers(pattern: string, client: string): boolean {
  const network = /^(\d+\.\d+\.\d+\.\d+)\/(\d+\.\d+\.\d+\.\d+)$/.exec(pattern);
  if (network) {
    const ip = ipv4(client);
    const [net, mask] = [ipv4(network[1] ?? ''), ipv4(network[2] ?? '')];
    return ip !== undefined && net !== undefined && mask !== undefined && (ip & mask) >>> 0 === net;
  }
  return likeRegExp(pattern, 'i').test(client);
}

/** PROCESSLIST's HOST is `ip:port` for TCP and `localhost` for the socket. */
export function clientHost(processHost: string): string {
  return processHost === 'localhost' ? processHost : processHost.replace(/:\d+$/, '');
}

/**
 * Ends the open sessions of the account name@host with KILL CONNECTION and waits until they are
 * gone (REVOKE and DROP USER do not touch open sessions). A session from a client whose address is
 * an account of its own for the same name belongs to that account and is left alone.
 */
export async function endSessions(s: MariaDbSession, name: string, host: string): Promise<void> {
  const others = (await s.rows('SELECT Host FROM mysql.user WHERE User = ?', [name]))
    .map((r) => String(r.Host).toLowerCase())
    .filter((h) => h !== host);
  const sessions = await s.rows(
    'SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()',
    [name],
  );
  const ids = sessions
    .filter((r) => r.USER === name)
    .filter((r) => {
      const client = clientHost(String(r.HOST ?? ''));
      return hostCovers(host, client) && !others.includes(client.toLowerCase());
    })
    .map((r) => Number(r.ID));
  if (!ids.length) return;
  for (const thread of ids) await s.runUnless([ER_NO_SUCH_THREAD], 'KILL CONNECTION ?', [thread]);
  await waitFor(
    `sessions of ${name}@${host} to end`,
    async () =>
      (await s.rows('SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?)', [ids])).length
        ? undefined
        : true,
    { timeoutMs: 10_000 },
  );
}

/** A LIKE-style pattern (`%`, `_`, `\` escapes) as an anchored regular expression. */
function likeRegExp(pattern: string, flags: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i] as string);
    else if (c === '%') source += '.*';
    else if (c === '_') source += '.';
    else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`, `s${flags}`);
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function ipv4(value: string): number | undefined {
  const parts = value.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return parts.reduce((acc, p) => ((acc << 8) | p) >>> 0, 0);
}
