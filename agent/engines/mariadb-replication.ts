import { readFile } from 'node:fs/promises';
import type { ReplicationSource, ReplicationStatus } from './manager.ts';
import type { MariaDbSession, Row } from './mariadb-session.ts';
import { waitFor } from './process.ts';
import { REPLICATION_USER } from './replication-state.ts';
import { ReseedRequired } from './reseed.ts';

// MariaDB's GTID replication (Trove's MysqlGTIDReplication): every member writes a binlog with
// log_slave_updates, so any replica can become the source and the others follow it by GTID.

/** The file mariadb-backup leaves in a backup with the binlog position it is consistent with. */
export const BINLOG_INFO_FILES = ['xtrabackup_binlog_info', 'mariadb_backup_binlog_info'];

/** The GTID position in a backup's binlog info file ("<file>\t<pos>\t<gtid>"), '' when none. */
export async function gtidOfBackup(dir: string): Promise<string | undefined> {
  for (const name of BINLOG_INFO_FILES) {
    const text = await readFile(`${dir}/${name}`, 'utf8').catch(() => undefined);
    if (text !== undefined) return (text.trim().split(/\s+/)[2] ?? '').trim();
  }
  return undefined;
}

/** The replication account, with only what a replica's IO thread needs. */
export async function ensureReplicationUser(
  s: MariaDbSession,
  account: { user: string; password: string },
): Promise<void> {
  const secrets = [account.password];
  await s.rows("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [account.user, account.password], secrets);
  await s.rows("ALTER USER ?@'%' IDENTIFIED BY ?", [account.user, account.password], secrets);
  await s.rows("GRANT REPLICATION SLAVE ON *.* TO ?@'%'", [account.user]);
}

/**
 * Follows `source` from `seedGtid` (the snapshot's position) when given, else from this member's
 * own position (a member whose source changed). Repeating it for the same source only makes sure
 * the threads run.
 */
export async function follow(
  s: MariaDbSession,
  source: ReplicationSource,
  caFile: string | undefined,
  seedGtid: string | undefined,
): Promise<void> {
  const [current] = await s.rows('SHOW SLAVE STATUS');
  if (current && current.Master_Host === source.host && Number(current.Master_Port) === source.port) {
    await s.rows('START SLAVE');
    return;
  }
  await s.rows('STOP SLAVE');
  await s.rows('RESET SLAVE ALL');
  if (seedGtid !== undefined) await s.rows('SET GLOBAL gtid_slave_pos = ?', [seedGtid]);
  const tls = caFile ? ', MASTER_SSL = 1, MASTER_SSL_CA = ?, MASTER_SSL_VERIFY_SERVER_CERT = 1' : '';
  await s.rows(
    `CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?,
       MASTER_USE_GTID = ${seedGtid !== undefined ? 'slave_pos' : 'current_pos'}, MASTER_CONNECT_RETRY = 2${tls}`,
    [source.host, source.port, source.user, source.password, ...(caFile ? [caFile] : [])],
    [source.password],
  );
  await s.rows('START SLAVE');
}

/**
 * MariaDB's ER_MASTER_FATAL_ERROR_READING_BINLOG: the source cannot send this member what follows
 * its position. With GTIDs that means this member holds transactions the source never had (an
 * old source that wrote what its replicas never got: "the slave has diverged"), or that the
 * source's binlog no longer reaches back to it ("missing the GTID", purged). Either way the IO
 * thread stops for good and only a fresh snapshot of the source lets it follow.
 */
export const FATAL_BINLOG_READ = 1236;

/** The engine's reason when the IO thread stopped for a reason only a re-seed cures. */
export function reseedReason(row: Record<string, unknown> | undefined): string | undefined {
  if (!row || Number(row.Last_IO_Errno) !== FATAL_BINLOG_READ) return undefined;
  return String(row.Last_IO_Error ?? '') || `error ${FATAL_BINLOG_READ} from the source`;
}

/**
 * Resolves once both threads run; fails with MariaDB's own error when they do not, at once with
 * ReseedRequired when the source refuses this member's position (waiting would not change it).
 */
export async function untilReplicating(session: () => Promise<Row | undefined>, timeoutMs = 30_000) {
  let last: Row | undefined;
  try {
    await waitFor(
      'mariadb replication to start',
      async () => {
        last = await session();
        return last?.Slave_IO_Running === 'Yes' && last.Slave_SQL_Running === 'Yes' ? true : undefined;
      },
      { timeoutMs, intervalMs: 250, abort: () => reseedReason(last) },
    );
  } catch {
    const diverged = reseedReason(last);
    if (diverged)
      throw new ReseedRequired(`mariadb: cannot follow the source without a re-seed: ${diverged}`);
    throw new Error(`mariadb: replication did not start: ${errorOf(last) ?? 'no replication configured'}`);
  }
}

export async function stopFollowing(s: MariaDbSession): Promise<void> {
  await s.rows('STOP SLAVE');
  await s.rows('RESET SLAVE ALL');
}

export async function status(s: MariaDbSession, isSource: boolean): Promise<ReplicationStatus | undefined> {
  const [row] = await s.rows('SHOW SLAVE STATUS');
  if (!row) {
    if (!isSource) return undefined;
    const [pos] = await s.rows('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
    return { role: 'source', position: String(pos?.pos ?? '') };
  }
  const running = row.Slave_IO_Running === 'Yes' && row.Slave_SQL_Running === 'Yes';
  const lag = row.Seconds_Behind_Master;
  return {
    role: 'replica',
    source: `${row.Master_Host}:${row.Master_Port}`,
    running,
    ...(lag === null || lag === undefined ? {} : { lag_seconds: Number(lag) }),
    position: String(row.Gtid_IO_Pos ?? ''),
    ...(running ? {} : { error: errorOf(row) ?? 'replication is stopped' }),
  };
}

export function errorOf(row: Row | undefined): string | undefined {
  if (!row) return undefined;
  const io = String(row.Last_IO_Error ?? '');
  const sql = String(row.Last_SQL_Error ?? '');
  return io || sql || undefined;
}

export const replicationUser = REPLICATION_USER;

/**
 * How long a source in sync mode waits for a replica's acknowledgement before it would fall back
 * to async: MariaDB's maximum, so that `sync` means what PostgreSQL's does (a commit returns
 * only once a replica holds it, however long that takes), never a silent downgrade after 10 s.
 */
export const SEMI_SYNC_WAIT_MS = 4_294_967_295;

/** Built-in semi-sync (MariaDB 10.3.3+): which sides run on this member. */
export interface SemiSync {
  /** This member is the source and waits for one replica's acknowledgement per commit. */
  source: boolean;
  /** This member acknowledges what it receives (harmless on a source; ready for a switchover). */
  replica: boolean;
}

/** The role file's lines, so that a restart keeps the mode. */
export function semiSyncLines(sync: SemiSync): string[] {
  return [
    `rpl_semi_sync_master_enabled = ${sync.source ? 'ON' : 'OFF'}`,
    `rpl_semi_sync_slave_enabled = ${sync.replica ? 'ON' : 'OFF'}`,
    `rpl_semi_sync_master_timeout = ${SEMI_SYNC_WAIT_MS}`,
    'rpl_semi_sync_master_wait_no_slave = ON',
  ];
}

/**
 * The same onto the running server. A replica's IO thread tells its source whether it
 * acknowledges only when it connects, so a change of the replica side restarts that thread.
 */
export async function applySemiSync(s: MariaDbSession, sync: SemiSync): Promise<void> {
  await s.rows('SET GLOBAL rpl_semi_sync_master_timeout = ?', [SEMI_SYNC_WAIT_MS]);
  await s.rows('SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON');
  await s.rows('SET GLOBAL rpl_semi_sync_master_enabled = ?', [sync.source ? 1 : 0]);
  const [before] = await s.rows('SELECT @@GLOBAL.rpl_semi_sync_slave_enabled AS on_');
  if (Number(before?.on_) === (sync.replica ? 1 : 0)) return;
  await s.rows('SET GLOBAL rpl_semi_sync_slave_enabled = ?', [sync.replica ? 1 : 0]);
  const [following] = await s.rows('SHOW SLAVE STATUS');
  if (following?.Slave_IO_Running === 'Yes') {
    await s.rows('STOP SLAVE IO_THREAD');
    await s.rows('START SLAVE IO_THREAD');
  }
}
