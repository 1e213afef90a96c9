import { readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Phases } from '../../lib/phases.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import {
  type Account,
  account,
  ensureDir,
  ensureTraversable,
  filesystemStats,
  sizeOf,
  tailFrom,
  writeConfig,
} from './fs.ts';
import type {
  DatabaseInfo,
  DatabaseSpec,
  EngineCounters,
  EngineLayout,
  EngineManager,
  FilesystemStats,
  OverrideRule,
  OverrideValue,
  PrepareOptions,
  ReplicationSource,
  ReplicationStatus,
  ServiceStatusDescription,
  UserAttributes,
  UserInfo,
  UserSpec,
} from './manager.ts';
import {
  isEngineProcess,
  processesIn,
  readPidFile,
  type StopStep,
  signal,
  spawnDetached,
  stopProcess,
  waitFor,
} from './process.ts';
import { type ReplicationMode, ReplicationState } from './replication-state.ts';
import { installTls, type TlsFiles, tlsFiles } from './tls.ts';
import { growFilesystem } from './volume.ts';

// What every engine shares: the instance's directory layout, prepare's once-only init, starting
// detached and waiting until the engine answers, stopping with escalation, and a status derived
// from files only (pid file, markers), so a new agent process picks up where the last one was.

/** Why an engine did not start; `code` is EADDRINUSE when the caller should pick another port. */
export class EngineStartError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
    readonly code?: 'EADDRINUSE',
  ) {
    super(message);
    this.name = 'EngineStartError';
  }
}

export interface EngineProcess {
  command: string;
  args: string[];
  pidFile: string;
  /** Something only this instance's engine has on its command line (its config or data path). */
  identity: string;
  stopSteps: StopStep[];
}

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;
const START_TIMEOUT_MS = 60_000;

/** What each engine's overrides class does for configuration groups (see EngineManager). */
export interface EngineOverrides {
  apply(values: Record<string, OverrideValue>, rules: OverrideRule[]): Promise<{ restartRequired: boolean }>;
  current(names: string[]): Promise<Record<string, string>>;
  defaults(names: string[]): Promise<Record<string, string>>;
}

/** How long a starting engine is probed every 10 ms (see untilAnswering). */
const FAST_PROBES_MS = 2_000;

export abstract class ProcessEngine implements EngineManager {
  abstract readonly defaultPort: number;
  protected readonly dataDir: string;
  protected readonly runDir: string;
  protected readonly logFile: string;
  private readonly initializedMarker: string;
  /** Present while the engine is down on purpose; its absence with no process means a crash. */
  private readonly stoppedMarker: string;
  /** The instance's TLS key and certificates: configure() serves TLS when they are there. */
  protected readonly tls: TlsFiles;

  /** The OS user the engine runs as: the instance's own when the compute host gives it one. */
  protected readonly user: string;
  /** This member's role in its replica set (replication.json): configure() renders it. */
  protected readonly replication: ReplicationState;

  constructor(
    protected readonly layout: EngineLayout,
    protected readonly name: string,
    serviceUser: string,
  ) {
    this.user = layout.osUser ?? serviceUser;
    this.dataDir = join(layout.baseDir, 'data');
    this.runDir = join(layout.baseDir, 'run');
    this.logFile = join(layout.baseDir, `${name}.log`);
    this.initializedMarker = join(layout.baseDir, 'initialized');
    this.tls = tlsFiles(layout.baseDir);
    this.stoppedMarker = join(layout.baseDir, 'stopped');
    this.replication = new ReplicationState(layout.baseDir);
  }

  protected abstract readonly socketPath: string;
  protected abstract process(): EngineProcess;
  /** Creates the data dir's contents; runs once per instance, on an empty data dir. */
  protected abstract initialize(owner: Account): Promise<void>;
  protected abstract configure(memoryMb: number, options: PrepareOptions, owner: Account): Promise<void>;
  /** Resolves when the engine answers a trivial query through its socket; rejects otherwise. */
  protected abstract ping(): Promise<void>;
  protected abstract provision(options: PrepareOptions): Promise<void>;
  /** How long a start waits for the engine to answer (a Galera joiner's state transfer comes first). */
  protected startTimeoutMs(): Promise<number> {
    return Promise.resolve(START_TIMEOUT_MS);
  }
  /** Runs right before the engine process is spawned, with the config it will read in place. */
  protected async beforeSpawn(): Promise<void> {}
  /** Before the engine stops: the agent's kept sessions close (see kept-session.ts). */
  protected async beforeStop(): Promise<void> {}

  // Databases, users, access and root: per engine (see EngineManager).
  abstract listDatabases(): Promise<DatabaseInfo[]>;
  abstract createDatabases(dbs: DatabaseSpec[]): Promise<void>;
  abstract deleteDatabase(name: string): Promise<void>;
  abstract listUsers(): Promise<UserInfo[]>;
  abstract getUser(name: string, host: string): Promise<UserInfo | undefined>;
  abstract createUsers(users: UserSpec[]): Promise<void>;
  abstract deleteUser(name: string, host: string): Promise<void>;
  abstract updateUser(name: string, host: string, attrs: UserAttributes): Promise<void>;
  abstract changePasswords(users: { name: string; host?: string; password: string }[]): Promise<void>;
  abstract listAccess(name: string, host: string): Promise<{ name: string }[]>;
  abstract grantAccess(name: string, host: string, databases: string[]): Promise<void>;
  abstract revokeAccess(name: string, host: string, database: string): Promise<void>;
  abstract enableRoot(password: string): Promise<void>;
  abstract disableRoot(): Promise<void>;
  abstract guestLogs(): GuestLogSpec[];
  abstract counters(): Promise<EngineCounters>;
  // Configuration groups: each engine's own overrides file and live settings, behind one shape;
  // removing is applying no overrides at all.
  protected abstract readonly overrides: EngineOverrides;
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
  removeOverrides(rules: OverrideRule[]): Promise<{ restartRequired: boolean }> {
    return this.applyOverrides({}, rules);
  }
  // Replication: per engine (see EngineManager).
  abstract enableAsSource(account: { user: string; password: string }): Promise<void>;
  abstract attachReplica(source: ReplicationSource): Promise<void>;
  abstract detachReplica(): Promise<void>;

  /** Files of this member's own inside its data dir (PostgreSQL's configuration): a re-seed keeps them. */
  protected ownFilesInDataDir(): string[] {
    return [];
  }

  /** After a re-seed's restore: the engine starts and follows `source` (its role is a replica's already). */
  protected async startFollowing(source: ReplicationSource): Promise<void> {
    await this.start();
    await this.attachReplica(source);
  }

  async reseed(restore: () => Promise<void>, source: ReplicationSource): Promise<void> {
    const owner = await account(this.user);
    await this.stop();
    const kept = new Map<string, string>();
    for (const name of this.ownFilesInDataDir()) {
      const text = await readFile(join(this.dataDir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) kept.set(name, text);
    }
    // The diverged data stays aside until the snapshot is in place: a restore that fails (a bad
    // object, no room) leaves the member as it was, to be re-seeded again. A previous attempt's
    // leftovers go first.
    const aside = join(this.layout.baseDir, 'diverged-data');
    await rm(aside, { recursive: true, force: true });
    await rename(this.dataDir, aside).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rm(this.initializedMarker, { force: true });
    await rm(join(this.layout.baseDir, 'restored-position'), { force: true });
    try {
      await restore();
    } catch (err) {
      await rm(this.dataDir, { recursive: true, force: true });
      await rename(aside, this.dataDir).catch(() => undefined);
      await writeFile(this.initializedMarker, `${new Date().toISOString()} kept after a failed re-seed\n`);
      await writeFile(this.stoppedMarker, '');
      throw err;
    }
    for (const [name, text] of kept) await writeConfig(join(this.dataDir, name), text, owner, 0o600);
    await rm(aside, { recursive: true, force: true });
    await this.replication.save({
      role: 'replica',
      source,
      account: { user: source.user, password: source.password },
    });
    await this.startFollowing(source);
  }
  abstract makeReadOnly(readOnly: boolean): Promise<void>;
  abstract latestPosition(): Promise<string>;
  abstract waitForPosition(position: string, timeoutMs: number): Promise<void>;
  abstract replicationStatus(): Promise<ReplicationStatus | undefined>;
  abstract setReplicationMode(mode: ReplicationMode): Promise<void>;
  /**
   * Directories owned by the engine's user, readable by it only: another instance's OS user
   * (or a tenant's COPY ... PROGRAM running as it) can neither list the data nor reach the socket.
   */
  protected ownedDirs(): [string, number][] {
    return [
      [this.dataDir, 0o700],
      [this.runDir, 0o700],
    ];
  }

  /** Where the last prepare's time went (init, tls, configure, start, provision): the agent logs it. */
  readonly prepareTimings = new Phases();

  async prepare(options: PrepareOptions): Promise<void> {
    checkMemory(options.memoryMb);
    if (Buffer.byteLength(this.socketPath) > MAX_SOCKET_PATH) {
      throw new Error(`${this.name}: socket path too long (${this.socketPath}); use a shorter base dir`);
    }
    const phases = this.prepareTimings;
    phases.ms.clear();
    const owner = await account(this.user);
    await ensureDir(this.layout.baseDir, { uid: 0, gid: 0 }, 0o711);
    await ensureTraversable(this.layout.baseDir);
    for (const [dir, mode] of this.ownedDirs()) await ensureDir(dir, owner, mode);
    if (!(await exists(this.initializedMarker))) {
      // A previous prepare may have died half-way through init: start again from empty.
      for (const entry of await readdir(this.dataDir)) {
        await rm(join(this.dataDir, entry), { recursive: true });
      }
      await phases.time('init', () => this.initialize(owner));
      await writeFile(this.stoppedMarker, '');
      await writeFile(this.initializedMarker, `${new Date().toISOString()}\n`);
    }
    // A replica starts read-only and following its source (configure renders the role); its
    // accounts and databases are its source's, so it creates none of its own.
    const { replication } = options;
    if (replication) {
      const account = { user: replication.user, password: replication.password };
      await this.replication.save({ role: 'replica', source: replication, account });
    }
    const { tls } = options;
    if (tls) await phases.time('tls', () => installTls(this.tls, tls, owner));
    await phases.time('configure', () => this.configure(Math.floor(options.memoryMb), options, owner));
    await phases.time('start', () => this.start());
    if (replication) await phases.time('attach', () => this.attachReplica(replication));
    else await phases.time('provision', () => this.provision(options));
  }

  async start(): Promise<void> {
    if (!(await exists(this.initializedMarker))) {
      throw new Error(`${this.name} is not prepared in ${this.layout.baseDir}`);
    }
    // The stopped marker goes only once the engine answers: an agent killed while starting it
    // (a restart the local cloud's stop cut short) leaves an engine that is down on purpose,
    // not one that "crashed", and a heartbeat taken before the pid file exists says the same.
    if (await this.pid()) {
      // Already running (an earlier agent started it): only wait until it answers.
      await this.untilAnswering();
      await rm(this.stoppedMarker, { force: true });
      return;
    }
    await this.killLeftovers();
    await this.beforeSpawn();
    const spec = this.process();
    const offset = await sizeOf(this.logFile);
    const child = spawnDetached(this.user, spec.command, spec.args, this.logFile, this.layout.cgroupProcs);
    let exited: string | undefined;
    child.once('exit', (code, sig) => {
      exited = `the engine exited (${sig ?? `code ${code}`})`;
    });
    child.once('error', (err) => {
      exited = err.message;
    });
    try {
      await this.untilAnswering(() => exited);
      // stop() and status() find the engine through its pid file: it must be there before we return.
      await waitFor(`${this.name}'s pid file`, () => this.pid(), { timeoutMs: 5_000, abort: () => exited });
      await rm(this.stoppedMarker, { force: true });
    } catch (err) {
      if (child.pid) signal(-child.pid, 'SIGKILL'); // the whole group: runuser and the engine
      await this.killLeftovers();
      await writeFile(this.stoppedMarker, '');
      throw this.startError(err, await tailFrom(this.logFile, offset));
    }
  }

  async stop(): Promise<void> {
    if (!(await exists(this.initializedMarker))) return;
    // The marker first, as before the hook: an agent killed at any point of a stop (a restart the
    // local cloud's stop cut short) leaves the engine marked as stopped on purpose.
    await writeFile(this.stoppedMarker, '');
    await this.beforeStop();
    const pid = await this.pid();
    if (pid) await stopProcess(pid, this.process().identity, this.process().stopSteps);
    await this.killLeftovers();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async startWithMemory(memoryMb: number): Promise<void> {
    checkMemory(memoryMb);
    if (!(await exists(this.initializedMarker))) {
      throw new Error(`${this.name} is not prepared in ${this.layout.baseDir}`);
    }
    await this.stop();
    // Only the flavor-sized settings change: the engine's data, accounts, TLS files and the
    // configuration group's overrides are read back from where prepare left them.
    const owner = await account(this.user);
    await this.configure(Math.floor(memoryMb), { memoryMb, databases: [], users: [] }, owner);
    await this.start();
  }

  async resizeFilesystem(): Promise<FilesystemStats> {
    // Without a volume of its own (the host's isolation off) the instance's size is a figure
    // only: there is no filesystem of its own to grow.
    if (this.layout.ownVolume) await growFilesystem(this.layout.baseDir);
    return this.filesystemStats();
  }

  async status(): Promise<ServiceStatusDescription> {
    if (!(await exists(this.initializedMarker))) return 'shutdown';
    if (await this.answers()) return 'healthy';
    if (await this.pid()) return 'running'; // up but not answering yet (starting, recovering)
    return (await exists(this.stoppedMarker)) ? 'shutdown' : 'crashed';
  }

  filesystemStats(): Promise<FilesystemStats> {
    return filesystemStats(this.dataDir, this.layout.ownVolume);
  }

  private async untilAnswering(abort?: () => string | undefined): Promise<true> {
    const probe = async () => ((await this.answers()) ? true : undefined);
    const timeoutMs = await this.startTimeoutMs();
    // Every start of an engine (a create, a restart, a resize) waits on this, and most engines
    // answer within a second or two of their spawn: probed every 10 ms then (a probe before the
    // socket exists is a connect refused at once), not seen 25 ms late on average as at 50 ms.
    // After that, every 50 ms: an engine still recovering or joining its cluster answers each
    // probe with a backend forked to refuse it, and needs the CPU more than we need the news.
    const intervalMs = (waitedMs: number) => (waitedMs < FAST_PROBES_MS ? 10 : 50);
    return waitFor(`${this.name} to accept connections`, probe, { timeoutMs, abort, intervalMs });
  }

  private answers(): Promise<boolean> {
    return this.ping().then(
      () => true,
      () => false,
    );
  }

  /** The engine's pid from its pid file, if that process is alive and is this instance's engine. */
  async pid(): Promise<number | undefined> {
    const { pidFile, identity } = this.process();
    const pid = await readPidFile(pidFile);
    return pid && (await isEngineProcess(pid, identity)) ? pid : undefined;
  }

  /**
   * Engines chdir into their data dir, and so do their children (PostgreSQL's backends, which
   * outlive a SIGKILLed postmaster for a moment and then block the next start): once the main
   * process is gone, whatever still runs there is killed and waited for.
   */
  private async killLeftovers(): Promise<void> {
    const dir = await realpath(this.dataDir);
    for (const pid of await processesIn(dir)) signal(pid, 'SIGKILL');
    await waitFor(
      `${this.name}'s leftover processes to exit`,
      async () => ((await processesIn(dir)).length ? undefined : true),
      { timeoutMs: 10_000 },
    );
  }

  private startError(err: unknown, tail: string): EngineStartError {
    const where = `${this.layout.bindAddress}:${this.layout.port}`;
    const reason = err instanceof Error ? err.message : String(err);
    const log = tail ? `\nlast lines of ${this.logFile}:\n${tail}` : '';
    if (/address already in use/i.test(tail)) {
      return new EngineStartError(
        `${this.name} could not start: address ${where} is already in use (EADDRINUSE)${log}`,
        tail,
        'EADDRINUSE',
      );
    }
    return new EngineStartError(`${this.name} could not start on ${where}: ${reason}${log}`, tail);
  }
}

export function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function checkMemory(memoryMb: number): void {
  if (!Number.isFinite(memoryMb) || memoryMb < 32) {
    throw new Error(`memoryMb must be a number of megabytes, at least 32 (got ${memoryMb})`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
