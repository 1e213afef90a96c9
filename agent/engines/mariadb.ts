import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import {
  type MariadbBuild,
  mariadbBuild,
  mariadbBuildOrSystem,
  mariadbPrograms,
} from '../../lib/catalog/mariadb-versions.ts';
import { compareVersions } from '../../lib/instances/upgrade-rules.ts';
import { mariadbBuildOf, mariadbPaths } from '../backup/layout.ts';
import { mariadbLogs, mariadbLogsConfig } from '../logs/engines.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import { clamp, type EngineProcess } from './base.ts';
import {
  type Account,
  account,
  filesystemStats,
  readIfExists,
  syncTree,
  treeSize,
  writeConfig,
} from './fs.ts';
import { GaleraMember } from './galera-member.ts';
import { KeptSession } from './kept-session.ts';
import type {
  EngineCounters,
  EngineLayout,
  PrepareOptions,
  ReplicationSource,
  ReplicationStatus,
  UpgradeResult,
} from './manager.ts';
import * as accounts from './mariadb-accounts.ts';
import { MariaDbOverrides } from './mariadb-overrides.ts';
import * as replication from './mariadb-replication.ts';
import { MariaDbSession } from './mariadb-session.ts';
import { mariadbFingerprint } from './mariadb-upgrade.ts';
import { runAs } from './process.ts';
import { type ReplicationMode, serverIdOf } from './replication-state.ts';
import { type SqlAccounts, SqlEngine } from './sql-engine.ts';
import { hasTls } from './tls.ts';
import { assertSameData, failUpgrade, UpgradeFailed, upgradeResult, upgradeState } from './upgrade.ts';

// MariaDB (also serving Trove's "mysql" manager). The agent administers it as root@localhost
// through the unix socket with unix_socket authentication (the agent runs as root), so no admin
// password exists anywhere. Each instance runs the build of its datastore version
// (lib/catalog/mariadb-versions.ts: the system's, or one extracted beside it), named by its
// mariadb-build file once initialised; build.cnf points the server at that build's messages,
// charsets and plugins.

/** Galera's SST script gives up after 300 s without data (its own timeout); the start waits longer. */
const GALERA_START_TIMEOUT_MS = 15 * 60_000;

interface UpgradeState {
  /** The builds' names. */
  from: string;
  to: string;
  /** A copy of the data dir taken with the old build stopped; removed only after success. */
  kept: string;
}

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
  /** Names the build that runs the data dir (mariadbBuildOf). */
  private readonly buildFile: string;
  /** The build's directories, included by my.cnf. */
  private readonly buildConfig: string;
  /** Galera (lib/clusters/galera.ts): the member's wsrep configuration and guest calls. */
  readonly galera: GaleraMember;
  /** Set for the one start that makes a new Galera cluster (--wsrep-new-cluster). */
  private newCluster = false;

  constructor(layout: EngineLayout) {
    super(layout, 'mariadb', 'mysql');
    this.socketPath = join(this.runDir, 'mysqld.sock');
    this.configFile = join(layout.baseDir, 'my.cnf');
    this.pidFile = join(this.runDir, 'mariadbd.pid');
    this.tmpDir = join(layout.baseDir, 'tmp');
    this.filesDir = join(layout.baseDir, 'files');
    this.roleFile = join(layout.baseDir, 'replication.cnf');
    this.restoredPosition = join(layout.baseDir, 'restored-position');
    this.buildFile = mariadbPaths(layout).buildFile;
    this.buildConfig = join(layout.baseDir, 'build.cnf');
    this.galera = new GaleraMember({
      baseDir: layout.baseDir,
      dataDir: this.dataDir,
      port: layout.port,
      bindAddress: layout.bindAddress,
      user: this.user,
      admin: (work) => this.admin(work),
      healthy: async () => (await this.status()) === 'healthy',
      running: async () => (await this.pid()) !== undefined,
      stop: () => this.stop(),
      start: (newCluster) => this.startAs(newCluster),
    });
    this.overrides = new MariaDbOverrides(
      {
        mariadbd: () => this.programs().mariadbd,
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

  /** The build that runs this instance (the one its data dir was last started with). */
  build(): MariadbBuild {
    return mariadbBuildOf(this.layout);
  }

  private programs() {
    return mariadbPrograms(this.build());
  }

  protected process(): EngineProcess {
    return {
      command: this.programs().mariadbd,
      // --defaults-file must come first or /etc/mysql is read as well (LOCAL_STACK pitfall 3).
      args: [`--defaults-file=${this.configFile}`, ...(this.newCluster ? ['--wsrep-new-cluster'] : [])],
      pidFile: this.pidFile,
      identity: `--defaults-file=${this.configFile}`,
      stopSteps: [{ signal: 'SIGTERM', waitMs: 60_000 }],
    };
  }

  protected async initialize(): Promise<void> {
    // --no-defaults and small InnoDB files make init take ~0.5 s; the real sizes come from my.cnf,
    // and MariaDB resizes the redo log on the next start by itself.
    const build = this.build();
    await runAs(this.user, mariadbPrograms(build).installDb, [
      '--no-defaults',
      // The build's own mariadbd, system tables' SQL, messages and plugins.
      `--basedir=${build.basedir}`,
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
      // No sync per statement: bootstrap's ~970 fdatasyncs (DDL log, Aria log, system tables)
      // each went through the loop device to the host's disk on the instance's own volume (init
      // took 2.0 s there, 1.0 s without them; provision bench, 2-core machine). The data dir is
      // made durable at once below, before prepare marks it initialized; a crash before that
      // starts init again from an empty data dir (as initdb --no-sync for PostgreSQL).
      '--debug-no-sync',
    ]);
    await writeFile(this.buildFile, `${build.name}\n`, { mode: 0o644 });
    await syncTree(this.dataDir, this.layout.ownVolume);
  }

  /** build.cnf: where the running build's own files are (a build never reads another's). */
  private async writeBuildConfig(build: MariadbBuild, gid: number): Promise<void> {
    const programs = mariadbPrograms(build);
    const content = [
      `# MariaDB ${build.version} (datastore version ${build.name}); rewritten by an upgrade.`,
      '[mariadbd]',
      `basedir = ${build.basedir}`,
      `lc_messages_dir = ${programs.shareDir}`,
      `character_sets_dir = ${programs.shareDir}/charsets`,
      `plugin_dir = ${programs.pluginDir}`,
      '',
    ].join('\n');
    await writeConfig(this.buildConfig, content, { uid: 0, gid });
  }

  protected async configure(memoryMb: number, _options: PrepareOptions, owner: Account): Promise<void> {
    const bufferPool = Math.max(16, Math.floor(memoryMb / 2));
    const lines = [
      '# Written by the Troveless guest agent for this instance only; rewritten on prepare.',
      `!include ${this.buildConfig}`,
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
      // A Galera member's wsrep lines (empty unless the instance is one).
      `!include ${this.galera.configFile}`,
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
    await this.writeBuildConfig(this.build(), owner.gid);
    await this.galera.writeConfig(owner);
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

  /**
   * Trove's upgrade, MariaDB's way, to a later build of the line (lib/catalog/mariadb-versions.ts):
   * the old build stopped cleanly, a copy of its data dir kept on the volume, the new build
   * started on the data dir with the instance's own config, then the new build's mariadb-upgrade
   * (as root over the instance's socket, unix_socket authentication: no password anywhere) and
   * the data's fingerprint (mariadb-upgrade.ts) compared with the one taken before. --force:
   * within one line mariadb-upgrade would otherwise only say there is nothing to do, and neither
   * check the tables against the new build nor record it in the data dir's mysql_upgrade_info.
   * Any failure puts the kept copy back and starts the old build on it.
   */
  async upgrade(version: string): Promise<UpgradeResult> {
    const started = performance.now();
    const from = this.build();
    const to = mariadbBuild(version);
    if (!to || compareVersions(to.version, from.version) <= 0)
      throw new UpgradeFailed(
        'check',
        `MariaDB ${from.version} cannot be upgraded to ${to?.version ?? version}`,
      );
    const state: UpgradeState = {
      from: from.name,
      to: to.name,
      kept: join(this.layout.baseDir, `data-${from.version}-before-upgrade`),
    };
    const owner = await account(this.user);
    let step = 'fingerprint';
    /** Until the engine is stopped nothing has changed: a failure leaves it serving as it was. */
    let stopped = false;
    try {
      const before = await this.admin(mariadbFingerprint);
      step = 'check';
      // The copy needs room beside the data on the instance's volume.
      const size = await treeSize(this.dataDir);
      const fs = await filesystemStats(this.dataDir, this.layout.ownVolume);
      if (fs.free_bytes < size * 1.05 + 16 * 1024 * 1024)
        throw new Error(`the volume has no room for a copy of the data (${size} bytes)`);
      await upgradeState.save(this.layout.baseDir, state);
      step = 'stop';
      stopped = true;
      await this.stop();
      step = 'copy';
      const partial = `${state.kept}.partial`;
      await rm(partial, { recursive: true, force: true });
      await runAs('root', 'cp', ['-a', this.dataDir, partial], { timeoutMs: 6 * 3600_000 });
      await rename(partial, state.kept);
      step = 'start';
      await this.useBuild(to, owner.gid);
      await this.start();
      step = 'mariadb-upgrade';
      // A temp dir of its own: mariadb-upgrade writes its connection's defaults file there, and a
      // killed one leaves it behind (in the shared /tmp, one per upgrade).
      const tmp = this.upgradeTmp;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { mode: 0o700 });
      const { stdout } = await runAs(
        'root',
        mariadbPrograms(to).upgrade,
        [
          '--no-defaults',
          `--socket=${this.socketPath}`,
          '--user=root',
          `--tmpdir=${tmp}`,
          '--force',
          '--verbose',
        ],
        { timeoutMs: 6 * 3600_000 },
      ).finally(() => rm(tmp, { recursive: true, force: true }));
      await writeFile(join(this.layout.baseDir, 'mariadb-upgrade.log'), stdout, { mode: 0o640 });
      step = 'verify';
      const [row] = await this.admin((s) => s.rows('SELECT VERSION() AS v'));
      if (!String(row?.v).startsWith(`${to.version}-`))
        throw new Error(`the server says it is ${String(row?.v)}, not ${to.version}`);
      const after = await this.admin(mariadbFingerprint);
      assertSameData(before, after);
      await upgradeState.clear(this.layout.baseDir);
      await rm(state.kept, { recursive: true, force: true });
      return upgradeResult(state, 'mariadb-upgrade', after, started);
    } catch (err) {
      return failUpgrade(
        step,
        `upgrade to MariaDB ${to.version}`,
        err,
        async () => {
          if (stopped) await this.undoUpgrade(state);
        },
        from.version,
      );
    }
  }

  /** mariadb-upgrade's own temp dir (--tmpdir), on the instance: never the shared /tmp. */
  private get upgradeTmp(): string {
    return join(this.layout.baseDir, 'upgrade-tmp');
  }

  /** The build's name in the build file and its directories in build.cnf: the next start runs it. */
  private async useBuild(build: MariadbBuild, gid: number): Promise<void> {
    await this.writeBuildConfig(build, gid);
    await writeFile(this.buildFile, `${build.name}\n`, { mode: 0o644 });
  }

  /** The kept copy back in place of the data dir (when it was complete), the old build started on it. */
  private async undoUpgrade(state: UpgradeState): Promise<void> {
    await this.stop().catch(() => {});
    if (existsSync(state.kept)) {
      await rm(this.dataDir, { recursive: true, force: true });
      await rename(state.kept, this.dataDir);
    }
    // Without a complete copy the old build never stopped being the data dir's only writer.
    await rm(`${state.kept}.partial`, { recursive: true, force: true });
    // An agent that died during mariadb-upgrade left its temp dir (and the defaults file in it).
    await rm(this.upgradeTmp, { recursive: true, force: true });
    await this.useBuild(mariadbBuildOrSystem(state.from), (await account(this.user)).gid);
    await upgradeState.clear(this.layout.baseDir);
    await this.start();
  }

  async recoverInterruptedUpgrade(): Promise<void> {
    const state = await upgradeState.load<UpgradeState>(this.layout.baseDir);
    if (state) await this.undoUpgrade(state);
  }

  /** Every start of a Galera member joins its cluster, unless it must make it anew (galera-member.ts). */
  override async start(): Promise<void> {
    const running = (await this.status()) === 'healthy';
    await this.startAs(!running && (await this.galera.startsNewCluster()));
  }

  /** A Galera member may first receive a whole copy of the data (SST) before it answers. */
  protected override async startTimeoutMs(): Promise<number> {
    return (await this.galera.membership()) ? GALERA_START_TIMEOUT_MS : super.startTimeoutMs();
  }

  private async startAs(newCluster: boolean): Promise<void> {
    this.newCluster = newCluster;
    try {
      await super.start();
    } finally {
      this.newCluster = false;
    }
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
    const { conn, session } = await this.adminSession();
    try {
      return await work(session);
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }

  private async adminSession(): Promise<{ conn: mysql.Connection; session: MariaDbSession }> {
    const conn = await this.connect();
    conn.on('error', () => {}); // a dropped admin session surfaces through the pending query
    try {
      const session = new MariaDbSession(conn);
      // `?` escapes strings with backslashes: keep a server-wide NO_BACKSLASH_ESCAPES out of the way.
      // The agent's own statements (passwords among them) stay out of the tenant's general log:
      // only its connection and this first statement show there.
      await session.run('SET SESSION sql_log_off = 1');
      await session.run("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')");
      return { conn, session };
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** The heartbeat's session, kept between heartbeats (kept-session.ts). */
  private readonly heartbeatSession = new KeptSession(
    async () => {
      const kept = await this.adminSession();
      // A tenant's low wait_timeout would end it between heartbeats (MariaDB's default is 8 h).
      await kept.session.run('SET SESSION wait_timeout = 28800').catch((err: unknown) => {
        kept.conn.destroy();
        throw err;
      });
      return kept;
    },
    ({ conn }) => conn.end(),
    ({ conn }) => conn.destroy(),
  );

  protected override async beforeStop(): Promise<void> {
    await this.heartbeatSession.drop();
  }

  async counters(): Promise<EngineCounters> {
    return this.heartbeatSession.use(async ({ session }) => {
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
