import { hostname } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { clamp, type EngineProcess, ProcessEngine } from './base.ts';
import { type Account, writeConfig } from './fs.ts';
import type { EngineLayout, PrepareOptions } from './manager.ts';
import { runAs } from './process.ts';

// MariaDB (also serving Trove's "mysql" manager). The agent administers it as root@localhost
// through the unix socket with unix_socket authentication (the agent runs as root), so no admin
// password exists anywhere.

const MARIADBD = '/usr/sbin/mariadbd';

export class MariaDbManager extends ProcessEngine {
  readonly defaultPort = 3306;
  protected readonly socketPath: string;
  private readonly configFile: string;
  private readonly pidFile: string;
  private readonly tmpDir: string;

  constructor(layout: EngineLayout) {
    super(layout, 'mariadb', 'mysql');
    this.socketPath = join(this.runDir, 'mysqld.sock');
    this.configFile = join(layout.baseDir, 'my.cnf');
    this.pidFile = join(this.runDir, 'mariadbd.pid');
    this.tmpDir = join(layout.baseDir, 'tmp');
  }

  protected override ownedDirs(): [string, number][] {
    return [...super.ownedDirs(), [this.tmpDir, 0o750]];
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
    await runAs('mysql', 'mariadb-install-db', [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=16M',
      '--innodb-log-file-size=8M',
      '--performance-schema=OFF',
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
      '',
    ];
    await writeConfig(this.configFile, lines.join('\n'), { uid: 0, gid: owner.gid });
  }

  protected async ping(): Promise<void> {
    const conn = await this.connect();
    try {
      await conn.query('SELECT 1');
    } finally {
      conn.destroy();
    }
  }

  protected async provision({ databases, users, rootPassword }: PrepareOptions): Promise<void> {
    const conn = await this.connect();
    const run = ddl(conn);
    try {
      for (const db of databases) {
        const charset = db.character_set ? mysql.format(' CHARACTER SET ??', [db.character_set]) : '';
        const collate = db.collate ? mysql.format(' COLLATE ??', [db.collate]) : '';
        await run(mysql.format('CREATE DATABASE IF NOT EXISTS ??', [db.name]) + charset + collate);
      }
      for (const user of users) {
        const account = [user.name, user.host ?? '%'];
        await run('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [...account, user.password]);
        // A repeated prepare may carry a new password; ALTER makes the result the same either way.
        await run('ALTER USER ?@? IDENTIFIED BY ?', [...account, user.password]);
        for (const db of user.databases ?? []) {
          await run('GRANT ALL PRIVILEGES ON ??.* TO ?@?', [db.name, ...account]);
        }
      }
      if (rootPassword) {
        // Trove's root is root@'%'. Passwordless root rows for specific hosts would shadow it for
        // those hosts (pitfall 4); root@localhost stays, socket-only, for the agent.
        for (const host of ['127.0.0.1', '::1', hostname()])
          await run('DROP USER IF EXISTS ?@?', ['root', host]);
        await run("CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ?", [rootPassword]);
        await run("ALTER USER 'root'@'%' IDENTIFIED BY ?", [rootPassword]);
        await run("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION");
      }
    } finally {
      await conn.end();
    }
  }

  private connect(): Promise<mysql.Connection> {
    return mysql.createConnection({ socketPath: this.socketPath, user: 'root', connectTimeout: 2_000 });
  }
}

/**
 * Runs one admin statement, its values escaped by mysql2 (DDL takes no server-side parameters).
 * mysql2 attaches the whole statement to its errors as `sql`, passwords included: only the
 * server's message is passed on.
 */
function ddl(conn: mysql.Connection): (sql: string, values?: string[]) => Promise<void> {
  return async (sql, values = []) => {
    try {
      await conn.query(mysql.format(sql, values));
    } catch (err) {
      throw new Error(`mariadb: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}
