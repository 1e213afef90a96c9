import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Account } from '../engines/fs.ts';
import { ensureDir, writeConfig } from '../engines/fs.ts';
import type { GuestLogSpec } from './spec.ts';

// Each engine's logs (Trove's guest_log_defs per datastore) and how its own settings turn them on:
// - MariaDB: `general` (general_log) and `slow_query` (slow_query_log, long_query_time = Trove's
//   guest_log_long_query_time, 1 s) into files of their own, `error` (SYS) the server's stderr.
//   Both switch live (SET GLOBAL) and are kept for the next start in `logs.cnf`, which my.cnf includes.
// - PostgreSQL: one server log (its stderr) holds everything: `error` (SYS) is that file, and
//   `general` (log_statement = all) and `slow_query` (log_min_duration_statement = 1000 ms) are
//   settings that make statements appear in it, so they publish the same file. Both switch live
//   (ALTER SYSTEM, then pg_reload_conf(), kept in postgresql.auto.conf).
// - Redis: `error` (SYS) is its log (stdout), `slow_query` is SLOWLOG (slowlog-log-slower-than,
//   Redis's 10 ms when on), kept in memory by Redis and rendered as lines into a file of the agent's.
// None needs a restart, so none leaves the instance RESTART_REQUIRED.

/** Trove's guest_log_long_query_time (ms). */
export const LONG_QUERY_MS = 1000;

export interface MariaDbLogContext {
  baseDir: string;
  errorLog: string;
  owner: () => Promise<Account>;
  /** Runs SQL on an admin session and returns the rows. */
  query: (sql: string) => Promise<Record<string, unknown>[]>;
}

/** The file my.cnf includes last: the logs' on/off for the next start. */
export function mariadbLogsConfig(baseDir: string): string {
  return join(baseDir, 'logs.cnf');
}

export function mariadbLogs(ctx: MariaDbLogContext): GuestLogSpec[] {
  const dir = join(ctx.baseDir, 'logs');
  const files = { general: join(dir, 'general.log'), slow_query: join(dir, 'slow_query.log') };
  const variables = { general: 'general_log', slow_query: 'slow_query_log' } as const;
  const current = async (name: keyof typeof variables) => {
    const [row] = await ctx.query(`SELECT @@GLOBAL.${variables[name]} AS v`);
    return Number(row?.v) === 1;
  };
  const persist = async () => {
    const owner = await ctx.owner();
    const lines = ['[mariadbd]'];
    for (const name of ['general', 'slow_query'] as const) {
      lines.push(
        `${variables[name]}_file = ${files[name]}`,
        `${variables[name]} = ${(await current(name)) ? 'ON' : 'OFF'}`,
      );
    }
    lines.push(`long_query_time = ${LONG_QUERY_MS / 1000}`, '');
    await writeConfig(mariadbLogsConfig(ctx.baseDir), lines.join('\n'), { uid: 0, gid: owner.gid });
  };
  const user = (name: keyof typeof variables): GuestLogSpec => ({
    name,
    type: 'USER',
    file: files[name],
    enabled: () => current(name),
    setEnabled: async (on) => {
      await ensureDir(dir, await ctx.owner(), 0o750);
      // The file's path first: an instance prepared before logs existed has none in my.cnf.
      await ctx.query(`SET GLOBAL ${variables[name]}_file = '${files[name]}'`);
      if (name === 'slow_query') await ctx.query(`SET GLOBAL long_query_time = ${LONG_QUERY_MS / 1000}`);
      await ctx.query(`SET GLOBAL ${variables[name]} = ${on ? 'ON' : 'OFF'}`);
      await persist();
      return { restartRequired: false };
    },
  });
  return [user('general'), user('slow_query'), { name: 'error', type: 'SYS', file: ctx.errorLog }];
}

export interface PostgresqlLogContext {
  serverLog: string;
  /** Runs SQL on a superuser session and returns the rows. */
  query: (sql: string, values?: unknown[]) => Promise<Record<string, unknown>[]>;
}

export function postgresqlLogs(ctx: PostgresqlLogContext): GuestLogSpec[] {
  const settings = {
    general: { name: 'log_statement', on: 'all', off: 'none' },
    slow_query: { name: 'log_min_duration_statement', on: String(LONG_QUERY_MS), off: '-1' },
  } as const;
  const user = (name: keyof typeof settings): GuestLogSpec => {
    const setting = settings[name];
    return {
      name,
      type: 'USER',
      file: ctx.serverLog,
      // The server's configured value (the last valid line of its config files, postgresql.auto.conf
      // last), not this agent session's, which starts with every statement log off.
      enabled: async () => {
        const [row] = await ctx.query(
          'SELECT setting FROM pg_file_settings WHERE name = $1 AND error IS NULL ORDER BY seqno DESC LIMIT 1',
          [setting.name],
        );
        return row !== undefined && String(row.setting) !== setting.off;
      },
      setEnabled: async (on) => {
        await ctx.query(`ALTER SYSTEM SET ${setting.name} = '${on ? setting.on : setting.off}'`);
        await ctx.query('SELECT pg_reload_conf()');
        return { restartRequired: false };
      },
    };
  };
  return [user('general'), user('slow_query'), { name: 'error', type: 'SYS', file: ctx.serverLog }];
}

export interface RedisLogContext {
  baseDir: string;
  serverLog: string;
  owner: () => Promise<Account>;
  /** Runs one command on an admin connection. */
  call: (...args: string[]) => Promise<unknown>;
  /** Keeps the running server's settings for the next start (CONFIG REWRITE). */
  persist: () => Promise<void>;
}

/** Redis's own default threshold (µs) while the slow log is on. */
const SLOWER_THAN_US = 10_000;

export function redisLogs(ctx: RedisLogContext): GuestLogSpec[] {
  const dir = join(ctx.baseDir, 'logs');
  const file = join(dir, 'slow_query.log');
  const lastFile = join(dir, 'slow_query.last');
  const threshold = async () => {
    const reply = (await ctx.call('CONFIG', 'GET', 'slowlog-log-slower-than')) as string[];
    return Number(reply[1]);
  };
  return [
    {
      name: 'slow_query',
      type: 'USER',
      file,
      enabled: async () => (await threshold()) >= 0,
      setEnabled: async (on) => {
        await ctx.call('CONFIG', 'SET', 'slowlog-log-slower-than', String(on ? SLOWER_THAN_US : -1));
        await ctx.persist();
        return { restartRequired: false };
      },
      // SLOWLOG entries (id, unix time, µs, arguments, client) not yet written, oldest first, as
      // lines. Ids restart with the server: a newest id below the last written one starts over.
      render: async () => {
        await ensureDir(dir, await ctx.owner(), 0o750);
        const entries = (await ctx.call('SLOWLOG', 'GET', '-1')) as [
          number,
          number,
          number,
          string[],
          string,
        ][];
        const last = Number((await readFile(lastFile, 'utf8').catch(() => '-1')).trim());
        const newest = entries[0]?.[0] ?? -1;
        const from = newest < last ? -1 : last;
        const fresh = entries.filter((e) => e[0] > from).reverse();
        if (!fresh.length) {
          await appendFile(file, '');
          return;
        }
        const lines = fresh.map(
          ([id, at, micros, args, client]) =>
            `${new Date(at * 1000).toISOString()} id=${id} duration_us=${micros} client=${client} ${args.map((a) => JSON.stringify(a)).join(' ')}\n`,
        );
        await appendFile(file, lines.join(''));
        await writeFile(lastFile, String(newest));
      },
    },
    { name: 'error', type: 'SYS', file: ctx.serverLog },
  ];
}
