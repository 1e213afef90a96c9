import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { checkPassword, notImplemented } from './admin.ts';
import { type EngineProcess, ProcessEngine } from './base.ts';
import { type Account, readIfExists, writeConfig, writeSecret } from './fs.ts';
import type {
  DatabaseInfo,
  EngineLayout,
  OverrideRule,
  OverrideValue,
  PrepareOptions,
  UserInfo,
} from './manager.ts';
import { quote, RedisOverrides } from './redis-overrides.ts';

// Redis 7. Trove manages no databases or users for redis (its API answers 501); a root password
// becomes requirepass, kept for the agent in a 0600 file. The config lives in a directory redis
// may write, because CONFIG REWRITE and ACL SAVE write it back (LOCAL_STACK pitfall 8).

export class RedisManager extends ProcessEngine {
  readonly defaultPort = 6379;
  protected readonly socketPath: string;
  private readonly confDir: string;
  private readonly configFile: string;
  private readonly passwordFile: string;
  private readonly overrides: RedisOverrides;

  constructor(layout: EngineLayout) {
    super(layout, 'redis', 'redis');
    this.socketPath = join(this.runDir, 'redis.sock');
    this.confDir = join(layout.baseDir, 'conf');
    this.configFile = join(this.confDir, 'redis.conf');
    this.passwordFile = join(layout.baseDir, 'admin-password');
    this.overrides = new RedisOverrides(
      {
        configFile: this.configFile,
        flavorFile: join(layout.baseDir, 'flavor.json'),
        stateFile: join(layout.baseDir, 'overrides.json'),
      },
      () => this.connect(),
    );
  }

  protected override ownedDirs(): [string, number][] {
    return [...super.ownedDirs(), [this.confDir, 0o750]];
  }

  protected process(): EngineProcess {
    return {
      command: '/usr/bin/redis-server',
      args: [this.configFile],
      pidFile: join(this.runDir, 'redis-server.pid'),
      // redis rewrites its process title; proc-title-template below keeps the config path in it.
      identity: this.configFile,
      // Redis ignores SIGTERM while its first AOF rewrite runs: keep asking (pitfall 8).
      stopSteps: [{ signal: 'SIGTERM', waitMs: 30_000, repeatMs: 3_000 }],
    };
  }

  protected async initialize(): Promise<void> {
    // Nothing to create: redis starts on an empty dir.
  }

  protected async configure(
    memoryMb: number,
    { rootPassword }: PrepareOptions,
    owner: Account,
  ): Promise<void> {
    if (rootPassword) await writeSecret(this.passwordFile, rootPassword);
    const password = rootPassword ?? (await readIfExists(this.passwordFile));
    const conf = [
      '# Written by the Troveless guest agent for this instance only; rewritten on prepare.',
      `bind ${this.layout.bindAddress}`,
      `port ${this.layout.port}`,
      `unixsocket ${quote(this.socketPath)}`,
      'unixsocketperm 700',
      `dir ${quote(this.dataDir)}`,
      `pidfile ${quote(join(this.runDir, 'redis-server.pid'))}`,
      'daemonize no',
      'supervised no',
      'logfile ""',
      'always-show-logo no',
      `proc-title-template "{title} {listen-addr} {config-file}"`,
      'dbfilename dump.rdb',
      // The flavor's settings (kept aside as the defaults), with any configuration group's overrides.
      ...(await this.overrides.configLines({
        maxmemory: String(Math.max(8, Math.floor((memoryMb * 3) / 4)) * 1024 * 1024),
        // Only keys with a TTL are evicted: plain data is never dropped silently, writes fail instead.
        'maxmemory-policy': 'volatile-lru',
        // A restored RDB is only loaded with AOF off (pitfall 8).
        appendonly: 'no',
        save: '3600 1 300 100 60 10000',
      })),
      ...(password ? [`requirepass ${quote(password)}`] : []),
      '',
    ];
    // Readable by redis only: it may hold requirepass.
    await writeConfig(this.configFile, conf.join('\n'), owner, 0o600);
  }

  protected async ping(): Promise<void> {
    const client = await this.connect();
    try {
      await client.ping();
    } finally {
      client.disconnect();
    }
  }

  private async connect(): Promise<Redis> {
    const client = new Redis({
      path: this.socketPath,
      password: await readIfExists(this.passwordFile),
      lazyConnect: true,
      connectTimeout: 2_000,
      commandTimeout: 2_000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    client.on('error', () => {}); // reported through the rejected promise instead
    try {
      await client.connect();
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return client;
  }

  /** Trove has no databases or users for redis; a root password also applies to the running server. */
  protected async provision({ rootPassword }: PrepareOptions): Promise<void> {
    if (!rootPassword) return;
    const client = await this.connect();
    try {
      await client.config('SET', 'requirepass', rootPassword);
    } finally {
      client.disconnect();
    }
  }

  /**
   * The default user's password (requirepass), for the running server and in redis.conf (CONFIG
   * REWRITE), and in the agent's password file so its own sessions keep authenticating. Sessions
   * opened without a password stay authenticated in Redis: they are ended.
   */
  async enableRoot(password: string): Promise<void> {
    checkPassword(password);
    const client = await this.connect();
    try {
      const previous = await readIfExists(this.passwordFile);
      await client.config('SET', 'requirepass', password);
      try {
        await writeSecret(this.passwordFile, password);
      } catch (err) {
        await client.config('SET', 'requirepass', previous ?? '');
        throw err;
      }
      await this.persist(client);
      await client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub', 'SKIPME', 'yes');
    } finally {
      client.disconnect();
    }
  }

  async disableRoot(): Promise<void> {
    const client = await this.connect();
    try {
      await client.config('SET', 'requirepass', '');
      await rm(this.passwordFile, { force: true });
      await this.persist(client);
    } finally {
      client.disconnect();
    }
  }

  /** CONFIG REWRITE, keeping restart-only overrides and a private file (it may hold the password). */
  private persist(client: Redis): Promise<void> {
    return this.overrides.persist(client);
  }

  applyOverrides(
    values: Record<string, OverrideValue>,
    rules: OverrideRule[],
  ): Promise<{ restartRequired: boolean }> {
    return this.overrides.apply(values, rules);
  }

  currentValues(names: string[]): Promise<Record<string, string>> {
    return this.overrides.current(names);
  }

  effectiveDefaults(names: string[]): Promise<Record<string, string>> {
    return this.overrides.defaults(names);
  }

  protected override beforeSpawn(): Promise<void> {
    return this.overrides.markStarted();
  }

  listDatabases(): Promise<DatabaseInfo[]> {
    return this.unsupported('databases');
  }
  createDatabases(): Promise<void> {
    return this.unsupported('databases');
  }
  deleteDatabase(): Promise<void> {
    return this.unsupported('databases');
  }
  listUsers(): Promise<UserInfo[]> {
    return this.unsupported('users');
  }
  getUser(): Promise<UserInfo | undefined> {
    return this.unsupported('users');
  }
  createUsers(): Promise<void> {
    return this.unsupported('users');
  }
  deleteUser(): Promise<void> {
    return this.unsupported('users');
  }
  updateUser(): Promise<void> {
    return this.unsupported('users');
  }
  changePasswords(): Promise<void> {
    return this.unsupported('users');
  }
  listAccess(): Promise<{ name: string }[]> {
    return this.unsupported('user access');
  }
  grantAccess(): Promise<void> {
    return this.unsupported('user access');
  }
  revokeAccess(): Promise<void> {
    return this.unsupported('user access');
  }

  private unsupported(what: string): Promise<never> {
    return Promise.reject(notImplemented('redis', what));
  }
}
