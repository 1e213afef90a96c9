import { appendFile, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresqlLogs } from '../logs/engines.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import { clamp, type EngineProcess } from './base.ts';
import { type Account, writeConfig } from './fs.ts';
import type { EngineCounters, EngineLayout, PrepareOptions } from './manager.ts';
import { PgAccessRules } from './pg-access-rules.ts';
import { PgOverrides } from './pg-overrides.ts';
import * as accounts from './postgresql-accounts.ts';
import { runAs } from './process.ts';
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
    // pg_hba.conf comes from the access rules (root login, users' hosts): see pg-access-rules.ts.
    await this.rules.write(await this.rules.load());
    await writeConfig(join(this.dataDir, 'pg_ident.conf'), ident.join('\n'), owner, 0o600);
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

/** A postgresql.conf string value. */
function literal(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
