import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { mariadbLogs, mariadbLogsConfig } from '../logs/engines.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import { clamp, type EngineProcess } from './base.ts';
import { type Account, account, readIfExists, writeConfig } from './fs.ts';
import type {
  EngineCounters,
  EngineLayout,
  PrepareOptions,
  ReplicationSource,
  ReplicationStatus,
} from './manager.ts';
import * as accounts from './mariadb-accounts.ts';
import { MariaDbOverrides } from './mariadb-overrides.ts';
import * as replication from './mariadb-replication.ts';
import { MariaDbSession } from './mariadb-session.ts';
import { runAs } from './process.ts';
import { type ReplicationMode, serverIdOf } from './replication-state.ts';
import { type SqlAccounts, SqlEngine } from './sql-engine.ts';
import { hasTls } from './tls.ts';

// MariaDB (also serving Trove's "mysql" manager). The agent administers it as root@localhost
// through the unix socket with unix_socket authentication (the agent runs as root), so no admin
// password exists anywhere.

const MARIADBD = '/usr/sbin/mariadbd';

export class MariaDbManager extends SqlEngine<MariaDbSession> {
  readonly defaultPort = 3306;
  protected readonly socketPath: string;
  private readonly configFile: string;
  private readonly pidFile: string;
  private readonly tmpDir: string;
  /** secure_file_priv: LOAD_FILE and INTO OUTFILE reach this directory of the instance's and nothing else. */
  private readonly filesDir: string;
  protected readonly overrides: MariaDbOverrides;
  protected readonly accounts: SqlAccounts<MariaDbSession> = accounts;
  /** read_only for a replica (or a source made read-only for a switchover); rewritten on each change. */
  private readonly roleFile: string;
  /** The GTID a restored snapshot is consistent with (agent/backup/index.ts): a new replica's start. */
  private readonly restoredPosition: string;

  constructor(layout: EngineLayout) {
    super(layout, 'mariadb', 'mysql');
    this.socketPath = join(this.runDir, 'mysqld.sock');
    this.configFile = join(layout.baseDir, 'my.cnf');
    this.pidFile = join(this.runDir, 'mariadbd.pid');
    this.tmpDir = join(layout.baseDir, 'tmp');
    this.filesDir = join(layout.baseDir, 'files');
    this.roleFile = join(layout.baseDir, 'replication.cnf');
    this.restoredPosition = join(layout.baseDir, 'restored-position');
    this.overrides = new MariaDbOverrides(
      {
        mariadbd: MARIADBD,
        configFile: this.configFile,
        overridesFile: join(layout.baseDir, 'overrides.cnf'),
        checkFile: join(layout.baseDir, 'my.cnf.check'),
        stateFile: join(layout.baseDir, 'overrides.json'),
        user: this.user,
      },
      (work) => this.admin(work),
    );
  }

  protected override ownedDirs(): [string, number][] {
    return [...super.ownedDirs(), [this.tmpDir, 0o750], [this.filesDir, 0o700]];
  }

  protected process(): EngineProcess {
    return {
      command: MARIADBD,
      // --defaults-file must come first or /etc/mysql is read as well (LOCAL_STACK pitfall 3).
      args: [`--defaults-file=${this.configFile}`],
      pidFile: this.pidFile,
      identity: `--defaults-file=${this.configFile}`,
      stopSteps: [{ signal: 'SIGTERM', waitMs: 60_000 }],
    };
  }

  protected async initialize(): Promise<void> {
    // --no-defaults and small InnoDB files make init take ~0.5 s; the real sizes come from my.cnf,
    // and MariaDB resizes the redo log on the next start by itself.
    await runAs(this.user, 'mariadb-install-db', [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=16M',
      '--innodb-log-file-size=8M',
      '--performance-schema=OFF',
      // The instance's own tmpdir: concurrent inits sharing /tmp lost each other's temporary
      // tables ("Could not remove temporary table ... error: 2") when several creates ran at once.
      `--tmpdir=${this.tmpDir}`,
    ]);
  }

  protected async configure(memoryMb: number, _options: PrepareOptions, owner: Account): Promise<void> {
    const bufferPool = Math.max(16, Math.floor(memoryMb / 2));
    const lines = [
      '# Written by the Troveless guest agent for this instance only; rewritten on prepare.',
      '[mariadbd]',
      `datadir = ${this.dataDir}`,
      `socket = ${this.socketPath}`,
      `pid-file = ${this.pidFile}`,
      `tmpdir = ${this.tmpDir}`,
      `port = ${this.layout.port}`,
      `bind-address = ${this.layout.bindAddress}`,
      'skip-name-resolve',
      'skip-external-locking',
      'performance_schema = OFF',
      `innodb_buffer_pool_size = ${bufferPool}M`,
      `innodb_log_file_size = ${clamp(Math.floor(memoryMb / 32), 8, 512)}M`,
      `innodb_log_buffer_size = ${clamp(Math.floor(memoryMb / 64), 2, 64)}M`,
      `key_buffer_size = ${clamp(Math.floor(memoryMb / 64), 1, 128)}M`,
      // Trove's own template: 100 connections per 512 MB of RAM.
      `max_connections = ${clamp(Math.floor((memoryMb / 512) * 100), 20, 2000)}`,
      'character-set-server = utf8mb4',
      'collation-server = utf8mb4_general_ci',
      // FILE (root has it) reads and writes only inside the instance's own directory: LOAD_FILE
      // of anything else is NULL, INTO OUTFILE elsewhere is refused.
      `secure_file_priv = ${this.filesDir}`,
      // Every member writes a binlog (with what it replicates, too) under a server id of its own,
      // so that any replica can become the source and the others follow it by GTID.
      `server_id = ${serverIdOf(this.layout.instanceId, this.layout.baseDir)}`,
      'log_bin = mysql-bin',
      'relay_log = relay-bin',
      'log_slave_updates = ON',
      'binlog_format = ROW',
      'binlog_expire_logs_seconds = 172800',
      // The instance's certificate (Trove's instance SSL): clients may verify it against the CA.
      ...((await hasTls(this.tls))
        ? [`ssl_ca = ${this.tls.ca}`, `ssl_cert = ${this.tls.certificate}`, `ssl_key = ${this.tls.key}`]
        : []),
      // Guest logs switched on (agent/logs/engines.ts), kept for the next start.
      `!include ${mariadbLogsConfig(this.layout.baseDir)}`,
      // The member's role (read_only on a replica), then the configuration group's overrides:
      // last, so they win over the flavor's values above.
      `!include ${this.roleFile}`,
      this.overrides.includeLine(),
      '',
    ];
    const logsConfig = mariadbLogsConfig(this.layout.baseDir);
    if ((await readIfExists(logsConfig)) === undefined) {
      await writeConfig(logsConfig, '[mariadbd]\n', { uid: 0, gid: owner.gid });
    }
    await this.overrides.writeFile(owner.gid);
    await this.writeRoleFile((await this.replication.load())?.role === 'replica', owner.gid);
    await writeConfig(this.configFile, lines.join('\n'), { uid: 0, gid: owner.gid });
  }

  private async writeRoleFile(readOnly: boolean, gid?: number): Promise<void> {
    const group = gid ?? (await account(this.user)).gid;
    const sync = await this.semiSync();
    const content = [
      '[mariadbd]',
      ...(readOnly ? ['read_only = ON'] : []),
      ...replication.semiSyncLines(sync),
      '',
    ].join('\n');
    await writeConfig(this.roleFile, content, { uid: 0, gid: group });
  }

  /** Which sides of semi-sync this member runs now (replication.ts semiSync). */
  private async semiSync() {
    const mode = await this.replication.loadMode();
    return {
      source: mode === 'sync' && (await this.replication.load())?.role === 'source',
      replica: mode === 'sync',
    };
  }

  /** The mode onto the running engine and its role file (a restart keeps it). */
  private async applyMode(): Promise<void> {
    const sync = await this.semiSync();
    await this.admin((s) => replication.applySemiSync(s, sync));
    await this.writeRoleFile((await this.replication.load())?.role === 'replica');
  }

  async setReplicationMode(mode: ReplicationMode): Promise<void> {
    await this.replication.saveMode(mode);
    await this.applyMode();
  }

  async enableAsSource(acct: { user: string; password: string }): Promise<void> {
    await this.admin((s) => replication.ensureReplicationUser(s, acct));
    if ((await this.replication.load())?.role !== 'replica')
      await this.replication.save({ role: 'source', account: acct });
    await this.applyMode();
  }

  async attachReplica(source: ReplicationSource): Promise<void> {
    await this.replication.save({
      role: 'replica',
      source,
      account: { user: source.user, password: source.password },
    });
    await this.writeRoleFile(true);
    // Semi-sync's replica side must be on before the IO thread starts (it registers at connect).
    const sync = await this.semiSync();
    await this.admin((s) => replication.applySemiSync(s, sync));
    const seed = (await readIfExists(this.restoredPosition))?.trim();
    const ca = (await hasTls(this.tls)) ? this.tls.ca : undefined;
    await this.admin(async (s) => {
      await s.rows('SET GLOBAL read_only = 1');
      await replication.follow(s, source, ca, seed);
    });
    await replication.untilReplicating(() => this.admin(async (s) => (await s.rows('SHOW SLAVE STATUS'))[0]));
    // Followed from the snapshot's position once; a later change of source goes on from its own.
    await rm(this.restoredPosition, { force: true });
  }

  async detachReplica(): Promise<void> {
    await this.admin(async (s) => {
      await replication.stopFollowing(s);
      await s.rows('SET GLOBAL read_only = 0');
    });
    await this.writeRoleFile(false);
    await this.replication.save(undefined);
    await this.applyMode();
  }

  async makeReadOnly(readOnly: boolean): Promise<void> {
    await this.admin((s) => s.rows('SET GLOBAL read_only = ?', [readOnly ? 1 : 0]));
    await this.writeRoleFile(readOnly);
  }

  async latestPosition(): Promise<string> {
    const [row] = await this.admin((s) => s.rows('SELECT @@GLOBAL.gtid_binlog_pos AS pos'));
    return String(row?.pos ?? '');
  }

  async waitForPosition(position: string, timeoutMs: number): Promise<void> {
    const [row] = await this.admin((s) =>
      s.rows('SELECT MASTER_GTID_WAIT(?, ?) AS done', [position, timeoutMs / 1000]),
    );
    if (Number(row?.done) !== 0)
      throw new Error(`mariadb: position ${position} not applied within ${timeoutMs} ms`);
  }

  async replicationStatus(): Promise<ReplicationStatus | undefined> {
    const role = (await this.replication.load())?.role;
    return this.admin((s) => replication.status(s, role === 'source'));
  }

  protected async ping(): Promise<void> {
    const conn = await this.connect();
    try {
      await conn.query('SELECT 1');
    } finally {
      conn.destroy();
    }
  }

  protected override beforeSpawn(): Promise<void> {
    return this.overrides.markStarted();
  }

  /** Runs `work` on an admin session (root@localhost over the socket), closed afterwards. */
  protected async admin<T>(work: (session: MariaDbSession) => Promise<T>): Promise<T> {
    const conn = await this.connect();
    conn.on('error', () => {}); // a dropped admin session surfaces through the pending query
    try {
      const session = new MariaDbSession(conn);
      // `?` escapes strings with backslashes: keep a server-wide NO_BACKSLASH_ESCAPES out of the way.
      // The agent's own statements (passwords among them) stay out of the tenant's general log:
      // only its connection and this first statement show there.
      await session.run('SET SESSION sql_log_off = 1');
      await session.run("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')");
      return await work(session);
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }

  async counters(): Promise<EngineCounters> {
    return this.admin(async (session) => {
      const status = await session.rows(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Questions')",
      );
      const value = (name: string) => Number(status.find((r) => r.Variable_name === name)?.Value);
      const [replica] = await session.rows('SHOW SLAVE STATUS');
      const lag = replica?.Seconds_Behind_Master;
      return {
        // The agent's own session is left out.
        connections: Math.max(0, value('Threads_connected') - 1),
        queries: value('Questions'),
        replication_lag_seconds: lag === undefined || lag === null ? null : Number(lag),
      };
    });
  }

  guestLogs(): GuestLogSpec[] {
    return mariadbLogs({
      baseDir: this.layout.baseDir,
      errorLog: this.logFile,
      owner: () => account(this.user),
      query: (sql) => this.admin((session) => session.rows(sql)),
    });
  }

  private connect(): Promise<mysql.Connection> {
    return mysql.createConnection({ socketPath: this.socketPath, user: 'root', connectTimeout: 2_000 });
  }
}
