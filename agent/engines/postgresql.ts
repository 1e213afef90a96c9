import { existsSync, readFileSync } from 'node:fs';
import { appendFile, chown, copyFile, readFile, realpath, rename, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  type PostgresqlVersion,
  requirePostgresqlVersion,
  upgradeMethod,
} from '../../lib/catalog/postgresql-versions.ts';
import { postgresqlLogs } from '../logs/engines.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import { clamp, type EngineProcess } from './base.ts';
import { type Account, account, ensureDir, sizeOf, syncTree, tailFrom, writeConfig } from './fs.ts';
import { KeptSession } from './kept-session.ts';
import type {
  EngineCounters,
  EngineLayout,
  PrepareOptions,
  ReplicationSource,
  ReplicationStatus,
  UpgradeResult,
} from './manager.ts';
import { PgAccessRules } from './pg-access-rules.ts';
import { PgOverrides } from './pg-overrides.ts';
import * as replication from './pg-replication.ts';
import { dumpAndRestore, fingerprint } from './pg-upgrade.ts';
import { ensureWalSummarizer, SUMMARIZE_WAL } from './pg-wal-summaries.ts';
import * as accounts from './postgresql-accounts.ts';
import { processesIn, runAs, signal, waitFor } from './process.ts';
import type { ReplicationMode } from './replication-state.ts';
import { ReseedRequired } from './reseed.ts';
import { type SqlAccounts, SqlEngine } from './sql-engine.ts';
import { hasTls } from './tls.ts';
import { assertSameData, failUpgrade, UpgradeFailed, upgradeResult, upgradeState } from './upgrade.ts';

// PostgreSQL 15, 16 and 17 (lib/catalog/postgresql-versions.ts says where each one's programs
// are). The agent administers it as the postgres superuser over the unix socket with peer
// authentication, its own OS user mapped to postgres in pg_ident.conf: no admin password.

const INSTANCE_CONF = 'troveless.conf';
/** What the instance's data dir carries besides the data: the agent's config and access files. */
const CARRIED_FILES = [
  INSTANCE_CONF,
  replication.ROLE_CONF,
  'pg_hba.conf',
  'pg_ident.conf',
  'postgresql.auto.conf',
];
interface UpgradeState {
  from: string;
  to: string;
  /** The old data dir, renamed once the new one took its place; removed only after success. */
  kept: string;
  /** The new data dir while it is built. */
  next: string;
}

export class PostgresqlManager extends SqlEngine<accounts.PgAdmin> {
  readonly defaultPort = 5432;
  protected readonly socketPath: string;
  private readonly rules: PgAccessRules;
  protected readonly overrides: PgOverrides;
  protected readonly accounts: SqlAccounts<accounts.PgAdmin> = accounts;

  constructor(layout: EngineLayout) {
    super(layout, 'postgresql', 'postgres');
    this.socketPath = join(this.runDir, `.s.PGSQL.${layout.port}`);
    const loopbackOnly = ['127.0.0.1', 'localhost', '::1'].includes(layout.bindAddress);
    this.rules = new PgAccessRules(this.dataDir, loopbackOnly, () => this.connect('postgres'), this.user);
    this.overrides = new PgOverrides(join(layout.baseDir, 'overrides.json'), () => this.connect('postgres'));
  }

  protected override ownedDirs(): [string, number][] {
    // postgres refuses a data dir that group or others can read; the socket's dir is the
    // instance user's alone, so no other instance's user reaches the socket.
    return [
      [this.dataDir, 0o700],
      [this.runDir, 0o700],
    ];
  }

  /**
   * The version that runs this instance: the one that wrote its data dir (PG_VERSION), else, before
   * initdb, the datastore version it was created with.
   */
  version(): PostgresqlVersion {
    const written = join(this.dataDir, 'PG_VERSION');
    if (existsSync(written)) return requirePostgresqlVersion(readFileSync(written, 'utf8').trim());
    return requirePostgresqlVersion(this.layout.datastoreVersion ?? '15');
  }

  private initdbArgs(dataDir: string, authLocal: string): string[] {
    return [
      `--pgdata=${dataDir}`,
      '--no-sync',
      '--username=postgres',
      `--auth-local=${authLocal}`,
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
    ];
  }

  protected process(): EngineProcess {
    return {
      command: join(this.version().binDir, 'postgres'),
      args: ['-D', this.dataDir],
      pidFile: join(this.dataDir, 'postmaster.pid'),
      identity: `-D ${this.dataDir}`,
      // SIGTERM is a "smart" shutdown that waits for every client; SIGINT is the fast one.
      stopSteps: [
        { signal: 'SIGINT', waitMs: 30_000 },
        { signal: 'SIGQUIT', waitMs: 5_000 },
      ],
    };
  }

  /**
   * Also makes sure a version that takes incremental backups runs its WAL summarizer: a server
   * configured before (its troveless.conf has no summarize_wal, an existing instance or one just
   * upgraded with its old config) gets the setting and a reload. Best effort: a backup checks again.
   */
  override async start(): Promise<void> {
    await super.start();
    if (!this.version().incrementalBackups) return;
    await ensureWalSummarizer(join(this.dataDir, INSTANCE_CONF), () => this.connect('postgres')).catch(
      () => false,
    );
  }

  protected async initialize(): Promise<void> {
    await runAs(this.user, join(this.version().binDir, 'initdb'), this.initdbArgs(this.dataDir, 'peer'));
    await this.includeInstanceConf(this.dataDir);
    // initdb --no-sync leaves its files to the page cache, and a server started on a cleanly
    // initialized cluster never syncs them: made durable once here, before prepare marks the
    // instance initialized (a crash before that starts initdb again from an empty data dir).
    await syncTree(this.dataDir, this.layout.ownVolume);
  }

  /** Our settings live in their own file, included last so they win over initdb's defaults. */
  private async includeInstanceConf(dataDir: string): Promise<void> {
    const main = join(dataDir, 'postgresql.conf');
    if (!(await readFile(main, 'utf8')).includes(INSTANCE_CONF)) {
      await appendFile(main, `\ninclude = '${INSTANCE_CONF}'\n`);
    }
  }

  protected async configure(memoryMb: number, _options: PrepareOptions, owner: Account): Promise<void> {
    const conf = [
      '# Written by the Troveless guest agent for this instance only; rewritten on prepare.',
      `listen_addresses = ${literal(this.layout.bindAddress)}`,
      `port = ${this.layout.port}`,
      `unix_socket_directories = ${literal(this.runDir)}`,
      `max_connections = ${clamp(Math.floor((memoryMb / 512) * 100), 20, 1000)}`,
      `shared_buffers = ${Math.max(16, Math.floor(memoryMb / 4))}MB`,
      `effective_cache_size = ${Math.max(32, Math.floor((memoryMb * 3) / 4))}MB`,
      `maintenance_work_mem = ${clamp(Math.floor(memoryMb / 16), 16, 2048)}MB`,
      `work_mem = ${clamp(Math.floor(memoryMb / 128), 1, 64)}MB`,
      "password_encryption = 'scram-sha-256'",
      // Every member can feed replicas: WAL for streaming, some kept for a replica that falls
      // briefly behind, and hint bits logged so that a former primary can be rewound.
      'wal_level = replica',
      'max_wal_senders = 10',
      'wal_keep_size = 128MB',
      'wal_log_hints = on',
      'hot_standby = on',
      // Incremental backups (pg_basebackup --incremental) read WAL summaries: pg-wal-summaries.ts.
      ...(this.version().incrementalBackups ? [SUMMARIZE_WAL] : []),
      // The instance's certificate (Trove's instance SSL): sslmode=verify-full against the CA works.
      ...((await hasTls(this.tls))
        ? [
            'ssl = on',
            `ssl_cert_file = ${literal(this.tls.certificate)}`,
            `ssl_key_file = ${literal(this.tls.key)}`,
          ]
        : []),
      '',
    ];
    // Only the agent and this instance's own OS user map to postgres: with the compute host's
    // isolation that user is the instance's alone, so no other instance's user gets in by peer.
    const ident = [
      '# MAPNAME SYSTEM-USERNAME PG-USERNAME',
      `agent ${userInfo().username} postgres`,
      `agent ${this.user} postgres`,
      '',
    ];
    await writeConfig(join(this.dataDir, INSTANCE_CONF), conf.join('\n'), owner, 0o600);
    // The member's role (a standby's source) lives in a file of its own, included last; a data
    // dir restored from an older backup gets the include here.
    const main = join(this.dataDir, 'postgresql.conf');
    const include = `include_if_exists = '${replication.ROLE_CONF}'`;
    if (!(await readFile(main, 'utf8')).includes(include)) await appendFile(main, `\n${include}\n`);
    await this.writeRole(owner);
    // pg_hba.conf comes from the access rules (root login, users' hosts): see pg-access-rules.ts.
    await this.rules.write(await this.rules.load());
    await writeConfig(join(this.dataDir, 'pg_ident.conf'), ident.join('\n'), owner, 0o600);
  }

  /** The role file and standby.signal, from replication.json. */
  private async writeRole(owner: Account): Promise<void> {
    const state = await this.replication.load();
    const source = state?.role === 'replica' ? state.source : undefined;
    const ca = (await hasTls(this.tls)) ? this.tls.ca : undefined;
    const name = (this.layout.instanceId ?? 'replica').replaceAll('-', '_');
    const syncSource = state?.role === 'source' && (await this.replication.loadMode()) === 'sync';
    const conf = replication.renderRoleConf(source, ca, name, syncSource);
    await writeConfig(join(this.dataDir, replication.ROLE_CONF), conf, owner, 0o600);
    const signal = join(this.dataDir, 'standby.signal');
    if (source) await writeConfig(signal, '', owner, 0o600);
    else await rm(signal, { force: true });
  }

  async enableAsSource(acct: { user: string; password: string }): Promise<void> {
    await this.admin(({ client }) => replication.ensureReplicationRole(client, acct));
    if ((await this.replication.load())?.role !== 'replica')
      await this.replication.save({ role: 'source', account: acct });
    await this.applyRole();
  }

  async setReplicationMode(mode: ReplicationMode): Promise<void> {
    await this.replication.saveMode(mode);
    await this.applyRole();
  }

  /** The role file again, reloaded by a running server (synchronous_standby_names is reloadable). */
  private async applyRole(): Promise<void> {
    await this.writeRole(await account(this.user));
    if ((await this.status()) === 'healthy')
      await this.admin(({ client }) => client.query('SELECT pg_reload_conf()'));
  }

  async attachReplica(source: ReplicationSource): Promise<void> {
    // A source that came back after a failover may hold writes its replicas never got, and its
    // timeline forked from the new source's: it is rewound onto the new source's history first.
    // Its engine may be running as the primary it was (the guest starts it at boot), or be down
    // after a crash (no clean shutdown: started once, so that its own crash recovery runs, since
    // pg_rewind wants a cleanly shut down target).
    const wasSource = (await this.replication.load())?.role === 'source';
    if (wasSource && (await this.status()) !== 'healthy' && (await this.clusterState()) === 'in production')
      await this.start();
    const rewind =
      wasSource &&
      (await this.status()) === 'healthy' &&
      !(await this.admin(({ client }) => replication.inRecovery(client)));
    if (rewind) {
      await this.stop();
      await this.rewindFrom(source);
    }
    await this.replication.save({
      role: 'replica',
      source,
      account: { user: source.user, password: source.password },
    });
    await this.writeRole(await account(this.user));
    try {
      await this.followAs();
    } catch (err) {
      // The engine's own verdict that this data dir went its own way after the new source's
      // timeline forked (a member left a primary by an earlier attempt, or a rewind that saw
      // nothing to do): no amount of waiting helps, a rewind does, once.
      if (!(err instanceof replication.TimelineForked)) throw err;
      await this.stop();
      await this.rewindFrom(source);
      await this.writeRole(await account(this.user));
      await this.followAs();
    }
  }

  /** Starts (or re-points) this member as a standby of `source` and waits until it streams. */
  private async followAs(): Promise<void> {
    const offset = await sizeOf(this.logFile);
    // A standby takes a new source on reload; a primary becomes a standby only by a restart
    // (after a switchover it is already stopped: it starts as a standby).
    if ((await this.status()) !== 'healthy') await this.start();
    else if (await this.admin(({ client }) => replication.inRecovery(client)))
      await this.admin(({ client }) => client.query('SELECT pg_reload_conf()'));
    else await this.restart();
    await replication.untilStreaming(
      () => this.connect('postgres'),
      async () => tailFrom(this.logFile, offset, 200),
    );
  }

  /** pg_controldata's "Database cluster state" ("in production" after a primary's crash). */
  private async clusterState(): Promise<string | undefined> {
    const { stdout } = await runAs(this.user, join(this.version().binDir, 'pg_controldata'), [
      '-D',
      this.dataDir,
    ]).catch(() => ({ stdout: '' }));
    return /^Database cluster state:\s*(.+)$/im.exec(stdout)?.[1]?.trim();
  }

  /**
   * pg_rewind onto `source` (wal_log_hints is on from initdb): the data dir takes the source's
   * history from where the two diverged, nothing this member wrote after it survives. It copies
   * the source's config files too, which name the source's address: this member's own come back.
   * The password travels in a passfile (0600, the engine user's), never in an argument.
   *
   * The source is checkpointed first. pg_rewind before PostgreSQL 16 reads the source's timeline
   * from its control file, which a promotion updates only at its first checkpoint after (a spread
   * one, minutes away): against a source promoted moments ago it finds both on the same timeline,
   * says "no rewind required", and leaves this member on a history the source forked from.
   */
  protected override ownFilesInDataDir(): string[] {
    return [
      'postgresql.conf',
      'postgresql.auto.conf',
      INSTANCE_CONF,
      'pg_hba.conf',
      'pg_ident.conf',
      PgAccessRules.FILE,
    ];
  }

  /** A standby starts only once its role is written (else it would start as a primary): followAs does both. */
  protected override async startFollowing(source: ReplicationSource): Promise<void> {
    await this.attachReplica(source);
  }

  private async rewindFrom(source: ReplicationSource): Promise<void> {
    const version = this.version();
    if (!version.rewind)
      throw new ReseedRequired(
        `postgresql: this member's history forked from its source's and PostgreSQL ${version.name} here has no pg_rewind of its own major: a re-seed is needed`,
      );
    const owner = await account(this.user);
    const kept = this.ownFilesInDataDir();
    const saved = new Map<string, string>();
    for (const name of kept) {
      const text = await readFile(join(this.dataDir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) saved.set(name, text);
    }
    const passfile = join(this.runDir, '.rewind-pgpass');
    const field = (v: string | number) => String(v).replaceAll('\\', '\\\\').replaceAll(':', '\\:');
    await writeConfig(
      passfile,
      `${field(source.host)}:${field(source.port)}:*:${field(source.user)}:${field(source.password)}\n`,
      owner,
      0o600,
    );
    try {
      const conninfo = `host=${source.host} port=${source.port} user=${source.user} dbname=postgres sslmode=prefer`;
      const withPass = (program: string, args: string[]) =>
        runAs(this.user, '/usr/bin/env', [
          `PGPASSFILE=${passfile}`,
          join(this.version().clientBinDir, program),
          ...args,
        ]);
      // The set's replication role holds pg_checkpoint (pg-replication.ts).
      await withPass('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', 'CHECKPOINT']).catch(
        (err: Error) => {
          throw new Error(
            `postgresql: the new source could not be checkpointed before pg_rewind: ${err.message}`,
          );
        },
      );
      // pg_rewind's own failure (its message says why) leaves a data dir only a re-seed mends.
      await withPass('pg_rewind', [`--target-pgdata=${this.dataDir}`, `--source-server=${conninfo}`]).catch(
        (err: Error) => {
          throw new ReseedRequired(`postgresql: pg_rewind failed, a re-seed is needed: ${err.message}`);
        },
      );
    } finally {
      await rm(passfile, { force: true });
      for (const [name, text] of saved) await writeConfig(join(this.dataDir, name), text, owner, 0o600);
    }
  }

  async detachReplica(): Promise<void> {
    const standby = await this.admin(({ client }) => replication.inRecovery(client));
    if (standby) {
      const { rows } = await this.admin(({ client }) =>
        client.query<{ done: boolean }>('SELECT pg_promote(true, 60) AS done'),
      );
      if (!rows[0]?.done) throw new Error('postgresql: the standby was not promoted within 60 s');
    }
    await this.replication.save(undefined);
    await this.applyRole();
  }

  /**
   * PostgreSQL has no read-only switch a client cannot undo (default_transaction_read_only is a
   * session default): a primary handed over is shut down cleanly instead. Its walsenders send
   * every record, the shutdown checkpoint last, to the standbys before it exits, so a standby that
   * replayed that checkpoint holds all of it, and after its promotion the old primary follows it
   * with no rewind.
   */
  async makeReadOnly(readOnly: boolean): Promise<void> {
    if (readOnly) await this.stop();
    else if ((await this.status()) !== 'healthy') await this.start();
  }

  async latestPosition(): Promise<string> {
    if ((await this.status()) !== 'healthy') {
      // Stopped (handed over): past the last record, its shutdown checkpoint.
      const { stdout } = await runAs(this.user, join(this.version().binDir, 'pg_controldata'), [
        '-D',
        this.dataDir,
      ]);
      const at = /^Latest checkpoint location:\s*([0-9A-F]+\/[0-9A-F]+)/im.exec(stdout)?.[1];
      if (!at) throw new Error('postgresql: pg_controldata shows no latest checkpoint location');
      return lsnPlus(at, 1);
    }
    const { rows } = await this.admin(({ client }) =>
      client.query<{ lsn: string }>(
        'SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn',
      ),
    );
    return rows[0]?.lsn ?? '';
  }

  async waitForPosition(position: string, timeoutMs: number): Promise<void> {
    await waitFor(
      `postgresql to replay ${position}`,
      () =>
        this.admin(async ({ client }) => {
          const { rows } = await client.query<{ done: boolean }>(
            'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done',
            [position],
          );
          return rows[0]?.done ? true : undefined;
        }),
      { timeoutMs, intervalMs: 100 },
    );
  }

  async replicationStatus(): Promise<ReplicationStatus | undefined> {
    const role = (await this.replication.load())?.role;
    const status = await this.admin(({ client }) => replication.status(client, role === 'source'));
    if (status?.role === 'replica' && !status.running) {
      const size = await sizeOf(this.logFile);
      const reason = replication.lastError(await tailFrom(this.logFile, Math.max(0, size - 65_536), 200));
      status.error = reason ?? 'replication is stopped';
    }
    return status;
  }

  /**
   * Trove's upgrade, PostgreSQL's way: a new data dir initdb'd by the new version beside the old
   * one on the same volume, filled by pg_upgrade --copy (or a dump and restore where the target
   * has no pg_upgrade, lib/catalog/postgresql-versions.ts), the agent's config files carried over,
   * and the new version started on it. Its data must read back as it was (fingerprint.ts: each
   * table's row count and row hash). The old data dir is kept, untouched, until then: any failure
   * puts it back and starts the old version on it.
   *
   * --copy rather than --link: with links the old and new clusters share their files, and once the
   * new version has started (to verify it) the old one can no longer be put back; --copy needs
   * room for a second copy of the data on the volume and takes longer (bench/upgrade.ts).
   */
  async upgrade(version: string): Promise<UpgradeResult> {
    const started = performance.now();
    const from = this.version();
    const to = requirePostgresqlVersion(version);
    if (to.major <= from.major)
      throw new UpgradeFailed('check', `PostgreSQL ${from.name} cannot be upgraded to ${to.name}`);
    const method = upgradeMethod(from, to);
    const state: UpgradeState = {
      from: from.name,
      to: to.name,
      kept: join(this.layout.baseDir, `data-${from.name}-before-upgrade`),
      next: join(this.layout.baseDir, `data-${to.name}-upgrading`),
    };
    const owner = await account(this.user);
    let step = 'fingerprint';
    try {
      const before = await fingerprint((db) => this.connect(db));
      step = 'initdb';
      await upgradeState.save(this.layout.baseDir, state);
      await rm(state.next, { recursive: true, force: true });
      await ensureDir(state.next, owner, 0o700);
      // Trust on the socket only while the new cluster is built: its dir is the instance user's
      // alone, and the old pg_hba.conf replaces this one before the server serves anyone.
      await runAs(this.user, join(to.binDir, 'initdb'), this.initdbArgs(state.next, 'trust'));
      if (method === 'pg_upgrade') {
        step = 'stop';
        await this.stop();
        step = 'pg_upgrade';
        await runAs(
          this.user,
          to.pgUpgrade ?? '',
          [
            '--username=postgres',
            `--old-bindir=${from.binDir}`,
            `--new-bindir=${to.binDir}`,
            `--old-datadir=${this.dataDir}`,
            `--new-datadir=${state.next}`,
            `--socketdir=${this.runDir}`,
            `--old-port=${this.layout.port}`,
            `--new-port=${this.layout.port}`,
            '--copy',
          ],
          // pg_upgrade writes its scripts into the working directory: the instance user's own.
          { cwd: this.runDir, timeoutMs: 6 * 3600_000 },
        );
      } else {
        step = 'dump';
        await this.dumpInto(from, to, state.next, owner);
        step = 'stop';
        await this.stop();
      }
      step = 'configure';
      for (const file of CARRIED_FILES) {
        const source = join(this.dataDir, file);
        if (!existsSync(source)) continue;
        await copyFile(source, join(state.next, file));
        await chown(join(state.next, file), owner.uid, owner.gid);
      }
      await this.includeInstanceConf(state.next);
      const include = `include_if_exists = '${replication.ROLE_CONF}'`;
      await appendFile(join(state.next, 'postgresql.conf'), `\n${include}\n`);
      await rename(this.dataDir, state.kept);
      await rename(state.next, this.dataDir);
      step = 'start';
      await this.start();
      step = 'verify';
      const after = await fingerprint((db) => this.connect(db));
      assertSameData(before, after);
      // Planner statistics are not carried by pg_upgrade: gather them now (best effort).
      await runAs(
        this.user,
        join(to.clientBinDir, 'vacuumdb'),
        [
          `--host=${this.runDir}`,
          `--port=${this.layout.port}`,
          '--username=postgres',
          '--all',
          '--analyze-only',
        ],
        { cwd: this.runDir, timeoutMs: 3600_000 },
      ).catch(() => {});
      await rm(state.kept, { recursive: true, force: true });
      await upgradeState.clear(this.layout.baseDir);
      return upgradeResult(state, method, after, started);
    } catch (err) {
      return failUpgrade(
        step,
        `upgrade to PostgreSQL ${to.name}`,
        err,
        () => this.undoUpgrade(state),
        from.name,
      );
    }
  }

  /** The whole cluster dumped by the old version into the new one, started on a socket of its own. */
  private async dumpInto(from: PostgresqlVersion, to: PostgresqlVersion, next: string, owner: Account) {
    // A short name: a socket's path must fit sockaddr_un (107 bytes), and the instance's dir may
    // already sit deep (the local cloud's lives under the checkout).
    const socketDir = join(this.layout.baseDir, 'ru');
    if (join(socketDir, `.s.PGSQL.${this.layout.port}`).length > 107)
      throw new Error(`the socket path under ${socketDir} is longer than a Unix socket allows`);
    await ensureDir(socketDir, owner, 0o700);
    const pgCtl = join(to.binDir, 'pg_ctl');
    const log = join(socketDir, 'restore.log');
    const started = runAs(this.user, pgCtl, [
      '-D',
      next,
      '-w',
      '-t',
      '120',
      '-l',
      log,
      '-o',
      `-c listen_addresses='' -c unix_socket_directories='${socketDir}' -p ${this.layout.port}`,
      'start',
    ]);
    // pg_ctl says only "Examine the log output": the fault carries the server's own words.
    await started.catch(async (err: Error) => {
      const said = await tailFrom(log, Math.max(0, (await sizeOf(log)) - 4096), 10);
      await rm(socketDir, { recursive: true, force: true });
      throw new Error(`${err.message}\n${said}`.trim());
    });
    try {
      await dumpAndRestore(
        this.user,
        from,
        { socketDir: this.runDir, port: this.layout.port },
        { socketDir, port: this.layout.port },
      );
    } finally {
      await runAs(this.user, pgCtl, ['-D', next, '-w', '-m', 'fast', 'stop']).catch(() => {});
      await killIn(next);
      await rm(socketDir, { recursive: true, force: true });
    }
  }

  /** The old data dir back in its place, the new one gone, the old version started on it. */
  private async undoUpgrade(state: UpgradeState): Promise<void> {
    await this.stop().catch(() => {});
    // pg_upgrade (or the restore) cut short leaves the servers it started running in either dir.
    await killIn(state.next);
    if (existsSync(state.kept)) {
      await killIn(this.dataDir);
      await rm(this.dataDir, { recursive: true, force: true });
      await rename(state.kept, this.dataDir);
    } else {
      await killIn(this.dataDir);
    }
    await rm(state.next, { recursive: true, force: true });
    await rm(join(this.layout.baseDir, 'run-upgrade'), { recursive: true, force: true });
    await upgradeState.clear(this.layout.baseDir);
    await this.start();
  }

  async recoverInterruptedUpgrade(): Promise<void> {
    const state = await upgradeState.load<UpgradeState>(this.layout.baseDir);
    if (state) await this.undoUpgrade(state);
  }

  protected async ping(): Promise<void> {
    const client = await this.connect('postgres');
    try {
      await client.query('SELECT 1');
    } finally {
      await client.end();
    }
  }

  /** Runs `work` with a superuser session on database postgres, closed afterwards. */
  protected async admin<T>(work: (admin: accounts.PgAdmin) => Promise<T>): Promise<T> {
    const client = await this.connect('postgres');
    try {
      return await work({ client, connect: (database) => this.connect(database), rules: this.rules });
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** The heartbeat's session, kept between heartbeats (kept-session.ts). */
  private readonly heartbeatSession = new KeptSession(
    async () => {
      const client = await this.connect('postgres');
      // A tenant's idle_session_timeout would end it between heartbeats, with a FATAL line each time.
      await client.query('SET idle_session_timeout = 0').catch((err: unknown) => {
        void client.end().catch(() => {});
        throw err;
      });
      return client;
    },
    (client) => client.end(),
    // pg has no destroy: the socket closes when the (frozen) engine is killed.
    () => {},
  );

  protected override async beforeStop(): Promise<void> {
    await this.heartbeatSession.drop();
  }

  async counters(): Promise<EngineCounters> {
    return this.heartbeatSession.use(async (client) => {
      // Statements are not counted by PostgreSQL: transactions (commits and rollbacks) are its
      // closest cumulative figure; the agent's own sessions are left out of connections.
      const { rows } = await client.query(`SELECT
          (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS connections,
          (SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database)::float8 AS queries,
          CASE WHEN pg_is_in_recovery()
            THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8 END AS lag`);
      const row = rows[0] ?? {};
      return {
        connections: Number(row.connections),
        queries: Number(row.queries),
        replication_lag_seconds: row.lag === null || row.lag === undefined ? null : Number(row.lag),
      };
    });
  }

  guestLogs(): GuestLogSpec[] {
    return postgresqlLogs({
      serverLog: this.logFile,
      query: (sql, values) =>
        this.admin(async ({ client }) => (await client.query(sql, values as unknown[])).rows),
    });
  }

  private async connect(database: string): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.runDir,
      port: this.layout.port,
      user: 'postgres',
      database,
      connectionTimeoutMillis: 2_000,
      // From the session's first statement on: nothing the agent runs reaches the tenant's logs.
      options: '-c log_statement=none -c log_min_duration_statement=-1 -c log_min_error_statement=panic',
    });
    client.on('error', () => {}); // a dropped admin session must not crash the agent
    await client.connect();
    // A failing statement is logged with its text by default: keep passwords out of the log.
    await client.query(
      "SET log_min_error_statement = 'panic'; SET log_statement = 'none'; SET log_min_duration_statement = -1",
    );
    return client;
  }
}

/** Kills whatever still runs in `dir` (a server pg_upgrade started) and waits until it is gone. */
async function killIn(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const real = await realpath(dir);
  for (const pid of await processesIn(real)) signal(pid, 'SIGKILL');
  await waitFor(
    `the processes in ${dir} to exit`,
    async () => ((await processesIn(real)).length ? undefined : true),
    {
      timeoutMs: 10_000,
    },
  );
}

/** `lsn` + `bytes`, as PostgreSQL writes an LSN (hi/lo in hex). */
function lsnPlus(lsn: string, bytes: number): string {
  const [hi, lo] = lsn.split('/').map((h) => BigInt(`0x${h}`)) as [bigint, bigint];
  const value = (hi << 32n) + lo + BigInt(bytes);
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A postgresql.conf string value. */
function literal(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
