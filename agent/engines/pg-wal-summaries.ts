import { appendFile, readFile } from 'node:fs/promises';
import type pg from 'pg';
import { waitFor } from './process.ts';

// PostgreSQL 17's incremental backups (pg_basebackup --incremental) read the WAL summaries that
// cover the time since their parent began: the WAL summarizer (summarize_wal = on) must already
// run when the parent is taken. configure() writes the setting into the agent's troveless.conf for
// every version that takes incrementals (lib/catalog/postgresql-versions.ts); a server configured
// before that (an existing 17 instance, or one upgraded to 17 with its old troveless.conf) gets the
// line added here, and a reload: the setting is sighup, no restart needed.

export const SUMMARIZE_WAL = 'summarize_wal = on';
const TURNED_ON = /^\s*summarize_wal\s*=\s*'?(on|true|yes|1)'?\s*(#.*)?$/im;

/** Adds the setting to the agent's config file when it lacks it; true when it was added. */
export async function configureWalSummaries(confFile: string): Promise<boolean> {
  const text = await readFile(confFile, 'utf8');
  if (TURNED_ON.test(text)) return false;
  // appendFile keeps the file's owner and mode (the engine's user, 0600).
  await appendFile(confFile, `${text.endsWith('\n') ? '' : '\n'}${SUMMARIZE_WAL}\n`);
  return true;
}

interface SummarizerState {
  on: boolean;
  running: boolean;
  /** The server has read its config since the reload was asked for. */
  reloaded: boolean;
}

/**
 * The WAL summarizer running on the server: the setting written into the agent's config file when
 * missing, and the server's config reloaded when it has it off. Resolves false when the server
 * keeps it off after the reload (a configuration group or ALTER SYSTEM set summarize_wal = off:
 * postgresql.auto.conf wins over the agent's file).
 */
export async function ensureWalSummarizer(
  confFile: string,
  connect: () => Promise<pg.Client>,
  timeoutMs = 15_000,
): Promise<boolean> {
  await configureWalSummaries(confFile);
  const session = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = await connect();
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => {});
    }
  };
  // A new session each time: a session reads a reloaded config only between its statements.
  const state = (asked: string | null) =>
    session(async (client) => {
      const { rows } = await client.query<SummarizerState>(
        `SELECT current_setting('summarize_wal')::bool AS on,
                (SELECT summarizer_pid FROM pg_get_wal_summarizer_state()) IS NOT NULL AS running,
                COALESCE(pg_conf_load_time() >= $1::timestamptz, false) AS reloaded`,
        [asked],
      );
      const row = rows[0];
      if (!row) throw new Error('postgresql: no answer about the WAL summarizer');
      return row;
    });
  const first = await state(null);
  if (first.on && first.running) return true;
  const asked = first.on
    ? null
    : await session(async (client) => {
        const { rows } = await client.query<{ now: string }>(
          'SELECT clock_timestamp()::text AS now, pg_reload_conf()',
        );
        return rows[0]?.now ?? null;
      });
  const outcome = await waitFor(
    'the WAL summarizer to run',
    async () => {
      const now = await state(asked);
      if (now.on && now.running) return 'running' as const;
      // The reload was read and left it off: something that wins over our file says off.
      if (!now.on && now.reloaded) return 'off' as const;
      return undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
  return outcome === 'running';
}
