import type pg from 'pg';
import type { ReplicationSource, ReplicationStatus } from './manager.ts';
import { waitFor } from './process.ts';

// PostgreSQL's streaming replication (Trove's PostgresqlReplicationStreaming): a standby restored
// from the source's base backup, with standby.signal and primary_conninfo, replays the source's
// WAL as it streams. primary_conninfo is reloadable (PostgreSQL 13+): a standby changes source
// without a restart; a primary becomes a standby only through one.

export const ROLE_CONF = 'troveless-replication.conf';

/** The replication role: LOGIN and REPLICATION only, with the set's password. */
export async function ensureReplicationRole(
  client: pg.Client,
  account: { user: string; password: string },
): Promise<void> {
  const role = client.escapeIdentifier(account.user);
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [account.user]);
  if (!exists.rowCount) await client.query(`CREATE ROLE ${role}`);
  await client.query(
    `ALTER ROLE ${role} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${client.escapeLiteral(account.password)}`,
  );
  // What pg_rewind reads of a source (a member that comes back after a failover rewinds onto the
  // new source with this account): its files, and nothing else a superuser has.
  for (const fn of [
    'pg_ls_dir(text, boolean, boolean)',
    'pg_stat_file(text, boolean)',
    'pg_read_binary_file(text)',
    'pg_read_binary_file(text, bigint, bigint, boolean)',
  ])
    await client.query(`GRANT EXECUTE ON FUNCTION pg_catalog.${fn} TO ${role}`);
  // And CHECKPOINT on a freshly promoted source, whose control file names its new timeline only
  // after one (postgresql.ts, rewindFrom). pg_checkpoint exists from PostgreSQL 15 on.
  const checkpoint = await client.query("SELECT 1 FROM pg_roles WHERE rolname = 'pg_checkpoint'");
  if (checkpoint.rowCount) await client.query(`GRANT pg_checkpoint TO ${role}`);
}

/** The settings a standby of `source` runs with (a postgresql.conf include). */
export function renderRoleConf(
  source: ReplicationSource | undefined,
  caFile: string | undefined,
  name: string,
  syncSource = false,
) {
  const lines = ['# Written by the Troveless guest agent: this member follows the source below, if any.'];
  // A source in sync mode: each commit waits until one standby has flushed it. Any streaming
  // standby counts ('*'): only the set's members hold the REPLICATION account, and
  // pg_basebackup's WAL streamer never reports a flush position, so a backup never counts as one.
  // Standbys change with promotes and ejects, and no name list has to follow them.
  if (syncSource) lines.push("synchronous_standby_names = 'ANY 1 (*)'", 'synchronous_commit = on');
  if (source) {
    const conninfo = [
      `host=${connValue(source.host)}`,
      `port=${source.port}`,
      `user=${connValue(source.user)}`,
      `password=${connValue(source.password)}`,
      `application_name=${connValue(name)}`,
      ...(caFile ? ['sslmode=verify-ca', `sslrootcert=${connValue(caFile)}`] : ['sslmode=prefer']),
    ].join(' ');
    lines.push(`primary_conninfo = ${confLiteral(conninfo)}`, "recovery_target_timeline = 'latest'");
  }
  return `${lines.join('\n')}\n`;
}

export async function inRecovery(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  return rows[0]?.r === true;
}

/** The standby's history forked from its source's before where it stands: only a rewind helps. */
export class TimelineForked extends Error {
  override name = 'TimelineForked';
}

/** What the server logs when a standby cannot follow its source's newer timeline. */
const FORKED =
  /new timeline \d+ forked off current database system timeline \d+ before current recovery point \S+/;

/** The server's line that says this member's history forked from its source's, if it said so. */
export function forkedTimeline(log: string): string | undefined {
  return FORKED.exec(log)?.[0];
}

/**
 * Resolves once the WAL receiver streams from the source and keeps streaming; else fails with
 * the log's reason (`log()`: the server's log since the standby was started or re-pointed).
 * A standby whose history forked from its source's streams for a few milliseconds (the old
 * timeline's WAL up to the fork) before its startup process refuses the new timeline: one look
 * at pg_stat_wal_receiver can catch it streaming. It is seen streaming twice, a second apart,
 * and the log must not say that the timelines forked (TimelineForked).
 */
export async function untilStreaming(
  connect: () => Promise<pg.Client>,
  log: () => Promise<string>,
  timeoutMs = 30_000,
): Promise<void> {
  let since: number | undefined;
  let forked: string | undefined;
  try {
    await waitFor(
      'postgresql to stream from its source',
      async () => {
        forked = forkedTimeline(await log());
        if (forked) return undefined;
        const client = await connect();
        try {
          const { rows } = await client.query<{ status: string }>('SELECT status FROM pg_stat_wal_receiver');
          if (rows[0]?.status !== 'streaming') since = undefined;
          else since ??= Date.now();
        } finally {
          await client.end().catch(() => {});
        }
        return since !== undefined && Date.now() - since >= 1_000 ? true : undefined;
      },
      { timeoutMs, intervalMs: 250, abort: () => forked },
    );
  } catch {
    const text = await log();
    forked ??= forkedTimeline(text);
    if (forked) throw new TimelineForked(`postgresql: replication cannot start: ${forked}`);
    throw new Error(`postgresql: replication did not start: ${lastError(text) ?? 'no WAL receiver'}`);
  }
}

export async function status(client: pg.Client, isSource: boolean): Promise<ReplicationStatus | undefined> {
  if (!(await inRecovery(client))) {
    if (!isSource) return undefined;
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return { role: 'source', position: rows[0]?.lsn ?? '' };
  }
  const { rows } = await client.query<{
    status: string | null;
    host: string | null;
    port: number | null;
    replay: string | null;
    lag_bytes: string | null;
    lag_seconds: string | null;
  }>(
    `SELECT r.status, r.sender_host AS host, r.sender_port AS port,
            pg_last_wal_replay_lsn()::text AS replay,
            pg_wal_lsn_diff(COALESCE(r.latest_end_lsn, pg_last_wal_receive_lsn()), pg_last_wal_replay_lsn())::text AS lag_bytes,
            CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                 ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END::text AS lag_seconds
       FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`,
  );
  const row = rows[0];
  const running = row?.status === 'streaming';
  return {
    role: 'replica',
    ...(row?.host ? { source: `${row.host}:${row.port}` } : {}),
    running,
    ...(row?.lag_seconds ? { lag_seconds: Math.max(0, Math.round(Number(row.lag_seconds))) } : {}),
    ...(row?.lag_bytes ? { lag_bytes: Math.max(0, Number(row.lag_bytes)) } : {}),
    position: row?.replay ?? '',
  };
}

/** The engine's own words for a broken replication: the last FATAL or ERROR line of its log. */
export function lastError(log: string): string | undefined {
  const lines = log.split('\n').filter((l) => /\b(FATAL|ERROR):/.test(l) || FORKED.test(l));
  const last = lines[lines.length - 1];
  return last?.replace(/^.*?\b(FATAL|ERROR|LOG):\s*/, '').trim();
}

/** A libpq keyword value: quoted, with \ and ' escaped. */
function connValue(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** A postgresql.conf string value. */
function confLiteral(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
