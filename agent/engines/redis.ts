import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisLogs } from '../logs/engines.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import { checkPassword, notImplemented } from './admin.ts';
import { type EngineProcess, ProcessEngine } from './base.ts';
import { type Account, account, readIfExists, sizeOf, tailFrom, writeConfig, writeSecret } from './fs.ts';
import type {
  ClusterMember,
  DatabaseInfo,
  EngineCounters,
  EngineLayout,
  PrepareOptions,
  ReplicationSource,
  ReplicationStatus,
  UpgradeResult,
  UserInfo,
} from './manager.ts';
import { waitFor } from './process.ts';
import * as clustering from './redis-cluster.ts';
import { quote, RedisOverrides } from './redis-overrides.ts';
import { CLUSTER_ACCOUNT_RULES, CLUSTER_ACCOUNT_USER, RebalanceJob } from './redis-rebalance.ts';
import * as replication from './redis-replication.ts';
import type { ReplicationMode } from './replication-state.ts';
import { hasTls } from './tls.ts';
import { UpgradeFailed } from './upgrade.ts';

// Redis 7. Trove manages no databases or users for redis (its API answers 501). Redis always has
// a password (requirepass, kept for the agent in a 0600 file): a random one the agent alone knows
// until root is enabled, then root's. The config lives in a directory redis
// may write, because CONFIG REWRITE and ACL SAVE write it back (LOCAL_STACK pitfall 8).

/**
 * The cluster account's lines of a member's redis.conf, once it has one: the account itself, and
 * the login a replica's link to its master uses (any member may become a replica: a failed master
 * that comes back follows the replica that took its place), so both survive a restart.
 */
function clusterAccountConf(password: string | undefined, tls: boolean): string[] {
  if (!password) return [];
  return [
    `user ${clusterAccountLine(password).join(' ')}`,
    `masteruser ${CLUSTER_ACCOUNT_USER}`,
    `masterauth ${quote(password)}`,
    ...(tls ? ['tls-replication yes'] : []),
  ];
}

/** The cluster account as ACL SETUSER takes it: only its hash is handed to Redis. */
function clusterAccountLine(password: string): string[] {
  const hash = createHash('sha256').update(password).digest('hex');
  return [CLUSTER_ACCOUNT_USER, 'reset', 'on', `#${hash}`, ...CLUSTER_ACCOUNT_RULES];
}

export class RedisManager extends ProcessEngine {
  readonly defaultPort = 6379;
  protected readonly socketPath: string;
  private readonly confDir: string;
  private readonly configFile: string;
  private readonly passwordFile: string;
  /** Present once prepare made this server a cluster member: every later config keeps cluster mode. */
  private readonly clusterFile: string;
  /** The cluster account's password (0600): replicas log in to their masters with it. */
  private readonly clusterAccountFile: string;
  protected readonly overrides: RedisOverrides;

  constructor(layout: EngineLayout) {
    super(layout, 'redis', 'redis');
    this.socketPath = join(this.runDir, 'redis.sock');
    this.confDir = join(layout.baseDir, 'conf');
    this.configFile = join(this.confDir, 'redis.conf');
    this.passwordFile = join(layout.baseDir, 'admin-password');
    this.clusterFile = join(layout.baseDir, 'cluster-member');
    this.clusterAccountFile = join(layout.baseDir, 'cluster-account');
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
    { rootPassword, cluster }: PrepareOptions,
    owner: Account,
  ): Promise<void> {
    if (cluster) await writeConfig(this.clusterFile, 'yes\n', owner, 0o600);
    const clustered = cluster === true || (await readIfExists(this.clusterFile)) !== undefined;
    if (rootPassword) {
      // A server already running (a repeated prepare) takes the new password first: the agent's
      // sessions authenticate with whatever the file holds.
      if ((await readIfExists(this.passwordFile)) !== rootPassword && (await this.pid())) {
        const client = await this.connect();
        try {
          await client.config('SET', 'requirepass', rootPassword);
        } finally {
          client.disconnect();
        }
      }
      await writeSecret(this.passwordFile, rootPassword);
    }
    // Never a moment without a password: until root is enabled (which rotates it and returns the
    // new one, as Trove's Redis guest does) only the agent knows it.
    const password =
      rootPassword ?? (await readIfExists(this.passwordFile)) ?? (await this.newAgentPassword());
    const conf = [
      '# Written by the Troveless guest agent for this instance only; rewritten on prepare.',
      `bind ${this.layout.bindAddress}`,
      // With the instance's certificate, its port speaks TLS only (Redis cannot serve both on one
      // port); the agent itself uses the unix socket.
      ...((await hasTls(this.tls))
        ? [
            'port 0',
            `tls-port ${this.layout.port}`,
            `tls-cert-file ${quote(this.tls.certificate)}`,
            `tls-key-file ${quote(this.tls.key)}`,
            `tls-ca-cert-file ${quote(this.tls.ca)}`,
            // Clients prove themselves with the password, not with certificates.
            'tls-auth-clients no',
          ]
        : [`port ${this.layout.port}`]),
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
      // A backup (redis-cli --rdb) or a replica's full sync gets its RDB at once, not after the
      // default 5 s Redis waits for more replicas to share one fork: it cost every backup and
      // every replica's seed 5 s (the backup bench's Redis ratio: 1.45x with it, ~2x without).
      // What it saved: snapshots asked together (replica_count 3 seeds three replicas at once)
      // now take a fork each, one after the other. Set for good, not by CONFIG SET around a
      // backup: that would race a replica's sync and CONFIG REWRITE, and outlive an agent that
      // died mid-backup.
      'repl-diskless-sync-delay 0',
      // The flavor's settings (kept aside as the defaults), with any configuration group's overrides.
      ...(await this.overrides.configLines({
        maxmemory: String(Math.max(8, Math.floor((memoryMb * 3) / 4)) * 1024 * 1024),
        // Only keys with a TTL are evicted: plain data is never dropped silently, writes fail instead.
        'maxmemory-policy': 'volatile-lru',
        // A restored RDB is only loaded with AOF off (pitfall 8).
        appendonly: 'no',
        save: '3600 1 300 100 60 10000',
      })),
      `requirepass ${quote(password)}`,
      // The member's role: the replication user, and on a replica the source it follows.
      ...replication.roleLines(await this.replication.load(), await hasTls(this.tls)),
      ...(clustered
        ? [
            ...clustering.clusterLines(this.layout.port, await hasTls(this.tls), this.layout.bindAddress),
            ...clusterAccountConf(await readIfExists(this.clusterAccountFile), await hasTls(this.tls)),
          ]
        : []),
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

  /**
   * Root's password stops working, but Redis never goes without one: a new random password that
   * only the agent knows takes its place, and sessions opened with the old one are ended.
   */
  async disableRoot(): Promise<void> {
    const password = randomBytes(24).toString('base64url');
    const client = await this.connect();
    try {
      const previous = await readIfExists(this.passwordFile);
      await client.config('SET', 'requirepass', password);
      try {
        await writeSecret(this.passwordFile, password);
      } catch (err) {
        await client.config('SET', 'requirepass', previous ?? password);
        throw err;
      }
      await this.persist(client);
      await client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub', 'SKIPME', 'yes');
    } finally {
      client.disconnect();
    }
  }

  async counters(): Promise<EngineCounters> {
    const client = await this.connect();
    try {
      const info = await client.info();
      const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
      const replica = field('role') === 'slave';
      return {
        // The agent's own connection is left out.
        connections: Math.max(0, Number(field('connected_clients')) - 1),
        queries: Number(field('total_commands_processed')),
        replication_lag_seconds: replica ? Number(field('master_last_io_seconds_ago') ?? 0) : null,
      };
    } finally {
      client.disconnect();
    }
  }

  async enableAsSource(acct: { user: string; password: string }): Promise<void> {
    await this.withClient(async (client) => {
      await replication.ensureReplicationUser(client, acct);
      await this.persist(client);
    });
    if ((await this.replication.load())?.role !== 'replica')
      await this.replication.save({ role: 'source', account: acct });
  }

  async attachReplica(source: ReplicationSource): Promise<void> {
    const offset = await sizeOf(this.logFile);
    const account = { user: source.user, password: source.password };
    await this.replication.save({ role: 'replica', source, account });
    const tls = await hasTls(this.tls);
    await this.withClient(async (client) => {
      await replication.ensureReplicationUser(client, account);
      await replication.follow(client, source, tls);
      await this.persist(client);
    });
    await replication.untilLinked(
      () => this.withClient(async (c) => replication.info(await c.info('replication'))),
      async () => replication.lastError(await tailFrom(this.logFile, offset, 200)),
    );
  }

  async detachReplica(): Promise<void> {
    await this.withClient(async (client) => {
      await client.call('REPLICAOF', 'NO', 'ONE');
      await this.persist(client);
    });
    await this.replication.save(undefined);
  }

  /** Redis acknowledges a write before any replica has it (WAIT is per client, not a guarantee). */
  async setReplicationMode(mode: ReplicationMode): Promise<void> {
    if (mode === 'sync')
      throw Object.assign(new Error('redis cannot make its source wait for a replica (sync mode)'), {
        name: 'BadRequest',
      });
    await this.replication.saveMode(mode);
  }

  async makeReadOnly(readOnly: boolean): Promise<void> {
    // Writes wait (they are not refused) until the member follows another or is made writable.
    await this.withClient((c) =>
      readOnly ? c.call('CLIENT', 'PAUSE', String(10 * 60_000), 'WRITE') : c.call('CLIENT', 'UNPAUSE'),
    );
  }

  async latestPosition(): Promise<string> {
    const i = await this.withClient(async (c) => replication.info(await c.info('replication')));
    return (i.role === 'master' ? i.master_repl_offset : i.slave_repl_offset) ?? '0';
  }

  async waitForPosition(position: string, timeoutMs: number): Promise<void> {
    await waitFor(
      `redis to reach offset ${position}`,
      async () => {
        const i = await this.withClient(async (c) => replication.info(await c.info('replication')));
        return Number(i.slave_repl_offset ?? -1) >= Number(position) ? true : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  async replicationStatus(): Promise<ReplicationStatus | undefined> {
    const role = (await this.replication.load())?.role;
    const i = await this.withClient(async (c) => replication.info(await c.info('replication')));
    const status = replication.status(i, role === 'source');
    if (status?.role === 'replica' && !status.running) {
      const size = await sizeOf(this.logFile);
      const tail = await tailFrom(this.logFile, Math.max(0, size - 65_536), 200);
      status.error = replication.lastError(tail) ?? 'the link to the source is down';
    }
    return status;
  }

  /** Redis Cluster's guest calls on this member (agent/cluster-operations.ts). */
  readonly cluster: ClusterMember = {
    meet: (host, port) => this.withClient((c) => clustering.meet(c, host, port)),
    addSlots: (ranges) => this.withClient((c) => clustering.addSlots(c, ranges)),
    info: () =>
      this.withClient(async (c) => {
        const nodes = String(await c.call('CLUSTER', 'NODES'));
        const { role } = clustering.roleOf(nodes);
        const link =
          role === 'replica' ? clustering.masterLinkStatus(await c.info('replication')) : undefined;
        return {
          ...(await clustering.info(c)),
          ...clustering.ownShare(nodes),
          role,
          ...(link ? { master_link_status: link } : {}),
          ...(this.rebalanceJob.state ? { rebalance: this.rebalanceJob.state } : {}),
        };
      }),
    account: async (password) => {
      const tls = await hasTls(this.tls);
      await this.withClient(async (c) => {
        await c.call('ACL', 'SETUSER', ...clusterAccountLine(password));
        await c.config('SET', 'masteruser', CLUSTER_ACCOUNT_USER);
        await c.config('SET', 'masterauth', password);
        if (tls) await c.config('SET', 'tls-replication', 'yes');
      });
      // The next config (a restart's, an upgrade's) keeps the account and the replica's login.
      await writeSecret(this.clusterAccountFile, password);
      this.rebalanceJob.clear();
    },
    replicate: (host, port) => this.withClient((c) => clustering.replicate(c, host, port)),
    password: () => readIfExists(this.passwordFile),
    rebalance: async ({ mode, leaving, password }) => {
      const nodes = String(await this.withClient((c) => c.call('CLUSTER', 'NODES')));
      const own = ['0.0.0.0', '::', '*'].includes(this.layout.bindAddress)
        ? '127.0.0.1'
        : this.layout.bindAddress;
      const ids = leaving
        .map((l) => clustering.nodeIdAt(nodes, l.host, l.port))
        .filter((id): id is string => id !== undefined);
      // What each leaving node is now, not what it was built as: a failover swaps the roles.
      const replicas = new Set(clustering.replicaIds(nodes));
      return this.rebalanceJob.start({
        mode,
        entry: `${own}:${this.layout.port}`,
        leaving: ids.filter((id) => !replicas.has(id)),
        leavingReplicas: ids.filter((id) => replicas.has(id)),
        password,
        ...((await hasTls(this.tls)) ? { ca: this.tls.ca } : {}),
      });
    },
  };

  /** The background grow or shrink of this member's cluster, run from here (redis-rebalance.ts). */
  private readonly rebalanceJob = new RebalanceJob(this.user);
  /**
   * Trove's upgrade, for the one kind the control plane lets Redis take (upgrade-rules.ts):
   * another catalog version of this very engine build. The engine restarts on its own data files
   * (saved at shutdown), and its keys are counted before and after.
   */
  async upgrade(version: string): Promise<UpgradeResult> {
    const started = Date.now();
    const before = await this.withClient((c) => c.dbsize());
    await this.restart();
    const after = await this.withClient((c) => c.dbsize());
    if (after !== before)
      throw new UpgradeFailed(
        'restart',
        `Upgrading to ${version} failed at step restart: the engine holds ${after} keys, it had ${before}`,
      );
    const info = await this.withClient((c) => c.info('server'));
    const running = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const seconds = (Date.now() - started) / 1000;
    return { from: running, to: running, method: 'restart', tables: 1, rows: after, seconds };
  }

  private async withClient<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  }

  guestLogs(): GuestLogSpec[] {
    return redisLogs({
      baseDir: this.layout.baseDir,
      serverLog: this.logFile,
      owner: () => account(this.user),
      call: (command, ...args) => this.withClient((client) => client.call(command, ...args)),
      persist: () => this.withClient((client) => this.persist(client)),
    });
  }

  /** A random password for the agent alone, kept in its 0600 file before Redis ever starts. */
  private async newAgentPassword(): Promise<string> {
    const password = randomBytes(24).toString('base64url');
    await writeSecret(this.passwordFile, password);
    return password;
  }

  /** CONFIG REWRITE, keeping restart-only overrides and a private file (it may hold the password). */
  private persist(client: Redis): Promise<void> {
    return this.overrides.persist(client);
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
