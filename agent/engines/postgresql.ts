import { appendFile, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { clamp, type EngineProcess, ProcessEngine } from './base.ts';
import { type Account, writeConfig } from './fs.ts';
import type { EngineLayout, PrepareOptions } from './manager.ts';
import { runAs } from './process.ts';

// PostgreSQL 15. The agent administers it as the postgres superuser over the unix socket with
// peer authentication, its own OS user mapped to postgres in pg_ident.conf: no admin password.

const BIN = '/usr/lib/postgresql/15/bin';
const INSTANCE_CONF = 'troveless.conf';

export class PostgresqlManager extends ProcessEngine {
  readonly defaultPort = 5432;
  protected readonly socketPath: string;

  constructor(layout: EngineLayout) {
    super(layout, 'postgresql', 'postgres');
    this.socketPath = join(this.runDir, `.s.PGSQL.${layout.port}`);
  }

  protected override ownedDirs(): [string, number][] {
    // postgres refuses a data dir that group or others can read.
    return [
      [this.dataDir, 0o700],
      [this.runDir, 0o755],
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
    await runAs('postgres', join(BIN, 'initdb'), [
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
    const loopback = ['127.0.0.1', 'localhost', '::1'].includes(this.layout.bindAddress);
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
      '',
    ];
    const hba = [
      '# TYPE DATABASE USER ADDRESS METHOD',
      'local all postgres peer map=agent',
      'local all all scram-sha-256',
      'host all all 127.0.0.1/32 scram-sha-256',
      'host all all ::1/128 scram-sha-256',
      // Host restrictions are not role attributes in PostgreSQL; off loopback, any address may try.
      ...(loopback ? [] : ['host all all 0.0.0.0/0 scram-sha-256', 'host all all ::/0 scram-sha-256']),
      '',
    ];
    const ident = [
      '# MAPNAME SYSTEM-USERNAME PG-USERNAME',
      `agent ${userInfo().username} postgres`,
      'agent postgres postgres',
      '',
    ];
    await writeConfig(join(this.dataDir, INSTANCE_CONF), conf.join('\n'), owner, 0o600);
    await writeConfig(join(this.dataDir, 'pg_hba.conf'), hba.join('\n'), owner, 0o600);
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

  protected async provision({ databases, users, rootPassword }: PrepareOptions): Promise<void> {
    const admin = await this.connect('postgres');
    try {
      for (const db of databases) {
        const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name]);
        if (found.rowCount) continue;
        // CREATE DATABASE takes no bind parameters and cannot run in a transaction (pitfall 6).
        const options = [
          db.character_set ? `ENCODING ${admin.escapeLiteral(db.character_set)}` : '',
          db.collate
            ? `LC_COLLATE ${admin.escapeLiteral(db.collate)} LC_CTYPE ${admin.escapeLiteral(db.collate)}`
            : '',
          db.character_set || db.collate ? 'TEMPLATE template0' : '',
        ].join(' ');
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(db.name)} ${options}`);
      }
      for (const user of users) {
        const role = admin.escapeIdentifier(user.name);
        const found = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user.name]);
        const verb = found.rowCount ? 'ALTER' : 'CREATE';
        await admin.query(`${verb} ROLE ${role} WITH LOGIN PASSWORD ${admin.escapeLiteral(user.password)}`);
        for (const { name } of user.databases ?? []) {
          await admin.query(
            `GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ${admin.escapeIdentifier(name)} TO ${role}`,
          );
          await this.grantSchema(name, user.name);
        }
      }
      // Trove's PostgreSQL root is the postgres superuser itself, reachable with a password over TCP.
      if (rootPassword)
        await admin.query(`ALTER ROLE postgres WITH PASSWORD ${admin.escapeLiteral(rootPassword)}`);
    } finally {
      await admin.end();
    }
  }

  /** Since 15, PUBLIC may not create in schema public: grant it per user, inside that database. */
  private async grantSchema(database: string, user: string): Promise<void> {
    const client = await this.connect(database);
    try {
      await client.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${client.escapeIdentifier(user)}`);
    } finally {
      await client.end();
    }
  }

  private async connect(database: string): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.runDir,
      port: this.layout.port,
      user: 'postgres',
      database,
      connectionTimeoutMillis: 2_000,
    });
    client.on('error', () => {}); // a dropped admin session must not crash the agent
    await client.connect();
    // A failing statement is logged with its text by default: keep passwords out of the log.
    await client.query("SET log_min_error_statement = 'panic'; SET log_statement = 'none'");
    return client;
  }
}

/** A postgresql.conf string value. */
function literal(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
