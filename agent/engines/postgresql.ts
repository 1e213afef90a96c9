import { appendFile, readFile, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresqlLogs } from '../logs/engines.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import { clamp, type EngineProcess } from './base.ts';
import { type Account, account, sizeOf, tailFrom, writeConfig } from './fs.ts';
import type {
  EngineCounters,
  EngineLayout,
  PrepareOptions,
  ReplicationSource,
  ReplicationStatus,
} from './manager.ts';
import { PgAccessRules } from './pg-access-rules.ts';
import { PgOverrides } from './pg-overrides.ts';
import * as replication from './pg-replication.ts';
import * as accounts from './postgresql-accounts.ts';
import { runAs, waitFor } from './process.ts';
import type { ReplicationMode } from './replication-state.ts';
import { type SqlAccounts, SqlEngine } from './sql-engine.ts';
import { hasTls } from './tls.ts';

// PostgreSQL 15. The agent administers it as the postgres superuser over the unix socket with
// peer authentication, its own OS user mapped to postgres in pg_ident.conf: no admin password.

const BIN = '/usr/lib/postgresql/15/bin';
const INSTANCE_CONF = 'troveless.conf';

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

  protected process(): EngineProcess {
    return {
      command: join(BIN, 'postgres'),
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

  protected async initialize(): Promise<void> {
    await runAs(this.user, join(BIN, 'initdb'), [
      `--pgdata=${this.dataDir}`,
      '--no-sync',
      '--username=postgres',
      '--auth-local=peer',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
    ]);
    // Our settings live in their own file, included last so they win over initdb's defaults.
    const main = join(this.dataDir, 'postgresql.conf');
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
    const offset = await sizeOf(this.logFile);
    // A source that came back after a failover (its engine started as the primary it was) may
    // hold writes its replicas never got: it is rewound onto the new source's history first.
    const wasSource = (await this.replication.load())?.role === 'source';
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
    // A standby takes a new source on reload; a primary becomes a standby only by a restart
    // (after a switchover it is already stopped: it starts as a standby).
    if ((await this.status()) !== 'healthy') await this.start();
    else if (await this.admin(({ client }) => replication.inRecovery(client)))
      await this.admin(({ client }) => client.query('SELECT pg_reload_conf()'));
    else await this.restart();
    await replication.untilStreaming(
      () => this.connect('postgres'),
      async () => replication.lastError(await tailFrom(this.logFile, offset, 200)),
    );
  }

  /**
   * pg_rewind onto `source` (wal_log_hints is on from initdb): the data dir takes the source's
   * history from where the two diverged, nothing this member wrote after it survives. It copies
   * the source's config files too, which name the source's address: this member's own come back.
   * The password travels in a passfile (0600, the engine user's), never in an argument.
   */
  private async rewindFrom(source: ReplicationSource): Promise<void> {
    const owner = await account(this.user);
    const kept = ['postgresql.conf', 'postgresql.auto.conf', INSTANCE_CONF, 'pg_hba.conf', 'pg_ident.conf'];
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
      await runAs(this.user, '/usr/bin/env', [
        `PGPASSFILE=${passfile}`,
        join(BIN, 'pg_rewind'),
        `--target-pgdata=${this.dataDir}`,
        `--source-server=${conninfo}`,
      ]);
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
      const { stdout } = await runAs(this.user, join(BIN, 'pg_controldata'), ['-D', this.dataDir]);
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

  async counters(): Promise<EngineCounters> {
    return this.admin(async ({ client }) => {
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
