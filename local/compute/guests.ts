import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AGENT_RUNTIME_ENV, AWAIT_LAUNCH_FLAG, LAUNCH_GO } from '../../lib/compute/agent-runtime.ts';
import type {
  AgentConfigFile,
  Server,
  ServerAccess,
  ServerAddress,
  ServerSpec,
} from '../../lib/compute/driver.ts';
import { Phases } from '../../lib/phases.ts';
import { allocateAddress, defaultPortFor } from './addresses.ts';
import { Isolation } from './isolation.ts';
import { KeyedLock } from './lock.ts';
import { Ports } from './ports.ts';
import {
  belongsTo,
  findByCmdline,
  findPidFiles,
  readPidFile,
  runs,
  stopProcesses,
  trySignal,
} from './procs.ts';
import {
  agentLogDir,
  agentLogPath,
  isServerId,
  newServerId,
  RecordStore,
  recordFor,
  type ServerRecord,
  serverOfAgentLog,
  serverPaths,
} from './records.ts';
import { SpareAgents } from './spares.ts';
import { Writers } from './writers.ts';

export interface GuestsOptions {
  stateDir: string;
  repoRoot: string;
  log: (line: string) => void;
  /** The agent's command line; `bundle`: the agent bundle a rebuilt server has of its own. */
  agentCommand: (configPath: string, bundle?: string) => { command: string; args: string[] };
  /** Added to every agent's environment: the local cloud's endpoints, credentials and settings. */
  agentEnv?: Record<string, string>;
  /** The host's one image, what a rebuild installs (none: the host rebuilds nothing). */
  image?: LocalImage;
}

/**
 * The local cloud's guest image: the guest agent bundle it built at start (local/agent-bundle.ts),
 * beside the engine binaries the host itself has installed, which every server shares.
 */
export interface LocalImage {
  /** A UUID made from the bundle's sha256: the same bundle is the same image. */
  id: string;
  /** The bundle's path (its source map beside it, `.map`). */
  bundle: string;
}

/** Nova's answer to a rebuild with an image it does not have; the server is left untouched. */
export class UnknownImage extends Error {
  constructor(readonly imageId: string) {
    super(`Image ${imageId} could not be found.`);
  }
}

const AGENT_GRACE_MS = 5000;
/** Engines get longer when their data is kept: PostgreSQL's fast stop and Redis's AOF rewrite take time. */
const ENGINE_GRACE_MS = 15_000;
/** Before deleting the data a clean stop still frees sockets and shared memory, but need not wait long. */
const ENGINE_DELETE_GRACE_MS = 5000;
/** A fenced source's engine gets no grace worth the name: SIGKILL follows its signal at once. */
const FENCE_GRACE_MS = 200;

/**
 * The servers of the local compute host: each is a base directory plus a guest agent process
 * (detached, its own process group) that starts its engine. The agents outlive the host; the
 * host finds them again through its records and /proc.
 */
export class Guests {
  private readonly records = new Map<string, ServerRecord>();
  private readonly addresses = new Set<string>();
  private readonly lock = new KeyedLock();

  private constructor(
    private readonly opts: GuestsOptions,
    private readonly store: RecordStore,
    private readonly computeDir: string,
    readonly isolation: Isolation,
  ) {
    this.writers = new Writers(join(computeDir, 'writers'), this.addresses, opts.log);
    this.ports = new Ports(join(computeDir, 'ports'), this.addresses, opts.log);
    this.spares = new SpareAgents({
      spawn: (id, manager) =>
        this.spawnAgent({ id, configPath: serverPaths(computeDir, id).configPath }, manager),
      makeUser: (id) => this.isolation.makeUser(id),
      discard: (id) => this.discardSpare(id),
      log: opts.log,
    });
  }

  /** Agents spawned ahead of the next launch of their datastore manager (spares.ts). */
  private readonly spares: SpareAgents;

  /** The replica sets' writer endpoints (writers.ts): they share the servers' addresses. */
  readonly writers: Writers;

  /** Addresses taken for instances ahead of their servers' launch (ports.ts). */
  private readonly ports: Ports;

  /** `recover: false` only loads the records (to stop what an earlier run left, without rebooting it). */
  static async open(opts: GuestsOptions, { recover = true } = {}): Promise<Guests> {
    const computeDir = resolve(opts.stateDir, 'compute');
    await makeTraversable(computeDir, resolve(opts.stateDir), opts.log);
    const isolation = await Isolation.open(computeDir, opts.log);
    await mkdir(agentLogDir(computeDir), { recursive: true, mode: 0o700 });
    const guests = new Guests(opts, new RecordStore(join(computeDir, 'servers')), computeDir, isolation);
    for (const record of await guests.store.loadAll(opts.log)) {
      guests.records.set(record.id, record);
      if (record.address) guests.addresses.add(record.address);
    }
    await guests.ports.load();
    await guests.removeStrays();
    if (recover) {
      await Promise.all(
        [...guests.records.values()].map((r) => guests.lock.run(r.instance_id, () => guests.recover(r))),
      );
      // The writers listen again, after their servers' rules are back (they admit the writers).
      for (const w of await guests.writers.load())
        await guests.isolation.allowWriter(w.id, { address: w.address, port: w.port, serverId: w.server_id });
    }
    return guests;
  }

  async launch(spec: ServerSpec): Promise<Server> {
    return this.lock.run(spec.instance_id, async () => {
      const existing = this.byInstance(spec.instance_id);
      if (existing) return this.view(existing);

      // Each phase's time, logged in one line (the provision bench reads it: what isolation adds).
      const started = performance.now();
      const phases = new Phases();
      const manager = spec.datastore.manager;
      // A spare agent has loaded already: the server takes the id it was spawned for.
      const spare = this.spares.take(manager);
      const id = spare?.id ?? newServerId();
      const { baseDir, configPath } = serverPaths(this.computeDir, id);
      const port = defaultPortFor(manager);
      // The instance's port, when the workflow made one: its certificate names that address.
      const reserved = this.ports.get(spec.instance_id);
      if (reserved && reserved.port !== port)
        throw new Error(
          `instance ${spec.instance_id}'s port was taken for port ${reserved.port}, not ${manager}'s ${port}`,
        );
      const address =
        reserved?.address ?? (await phases.time('address', () => allocateAddress(this.addresses, port)));
      const record = recordFor(id, spec, { baseDir, configPath, address, port });
      let early: ChildProcess | undefined = spare?.child;
      try {
        // On disk before anything is made for it, its directory included: a host that dies
        // half-way still knows what to remove (everything is named after the server id), and
        // takes it apart at its next start. Not served until the launch is done.
        await this.store.save({ ...record, launching: true });
        await mkdir(baseDir, { mode: 0o711 });
        // The agent starts now, ahead of its launch: node and its code load while the user,
        // volume, cgroups and rules are made (~0.1 s), instead of after them; it waits for our
        // word before it reads its config. None yet (a failed spawn): it is started as a reboot
        // starts it, once the server is made.
        early ??= await this.spawnAgent(record, manager).catch(() => undefined);
        // Its own user, firewall rules, cgroups, and its own volume mounted here: everything below
        // lives on that volume.
        phases.include(await this.isolation.provide(record, spare?.user));
        // Root's, traversable only (mkdir's mode is masked by the umask; a fresh ext4 root is 0755):
        // the engine's own directories below it belong to the instance's user.
        await chmod(baseDir, 0o711);
        const config: AgentConfigFile = {
          ...spec.agent,
          layout: {
            baseDir,
            port,
            bindAddress: address,
            ...(record.isolation && {
              osUser: record.isolation.osUser,
              cgroupProcs: record.isolation.cgroupProcs,
              ownVolume: true,
            }),
          },
          flavor: spec.flavor,
          volume_size_gb: spec.volume_size_gb,
        };
        await writeFile(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
        await this.store.save(record);
        this.records.set(id, record);
        await phases.time('agent', async () => {
          if (early) {
            try {
              return await this.confirmLaunch(record, early);
            } catch (err) {
              // The agent spawned ahead cannot take its word (it died, or closed its stdin, since
              // it was checked alive): it goes, and a fresh one starts, as a reboot starts it.
              this.opts.log(
                `${id}: the agent started ahead did not take its launch (${message(err)}): starting another`,
              );
              // Not once it is reaped: its group id could be another's by then.
              if (early.pid && early.exitCode === null && early.signalCode === null)
                trySignal(-early.pid, 'SIGKILL');
              early = undefined;
            }
          }
          await this.startAgent(record, 'ERROR');
        });
        phases.add('launch', performance.now() - started);
        this.opts.log(
          `launched ${id} for instance ${spec.instance_id} on ${address}:${port} (${phases}${spare ? ', spare agent' : ''})`,
        );
        // Awaited here, not returned: the finally's refill (a fork that holds the event loop for
        // ~10-20 ms) is queued only once the answer is ready, never in front of the view's reads.
        return await this.view(record);
      } catch (err) {
        // The agent spawned ahead goes (its stdin ends without a word; killed in case it is
        // still loading), before what it would run on is taken apart.
        if (early?.pid) {
          early.stdin?.end();
          trySignal(-early.pid, 'SIGKILL');
        }
        if (!this.records.has(id)) {
          // Nothing of a launch that failed half-way stays: no user, mount, loop, cgroup or rule.
          try {
            await this.isolation.release(record);
            await rm(baseDir, { recursive: true, force: true });
            await rm(this.agentLogOf(id), { force: true });
            await this.store.remove(id);
            // A port's address stays the instance's: the launch, retried, takes it again.
            this.freeAddress(address);
          } catch (cleanup) {
            // Left for the next start to finish, as a delete interrupted by a crash is.
            this.opts.log(`${id}: cleaning up a failed launch: ${message(cleanup)}`);
            record.state = 'deleting';
            await this.store.save(record).catch(() => {});
            this.records.set(id, record);
          }
        }
        throw err;
      } finally {
        // The next launch of this manager finds an agent loaded. Spawned once this launch has
        // answered: a spawn holds the event loop for its fork and exec.
        setImmediate(() => this.spares.refill(manager));
      }
    });
  }

  /** The server ids spare agents wait under, ready to be taken (tests look). */
  spareIds(): string[] {
    return this.spares.ids();
  }

  /** The spare agents end; the host makes none after this (it is closing). */
  async closeSpares(): Promise<void> {
    await this.spares.close();
  }

  async get(id: string): Promise<Server | undefined> {
    const record = isServerId(id) ? this.records.get(id) : undefined;
    return record && record.state === 'running' ? this.view(record) : undefined;
  }

  async list(instanceId?: string): Promise<Server[]> {
    const records = [...this.records.values()].filter(
      (r) => r.state === 'running' && (instanceId === undefined || r.instance_id === instanceId),
    );
    return Promise.all(records.map((r) => this.view(r)));
  }

  /** Kills the agent and its engine, removes the base dir and the record. Unknown ids: nothing to do. */
  async delete(id: string): Promise<void> {
    const known = isServerId(id) ? this.records.get(id) : undefined;
    if (!known) return;
    await this.lock.run(known.instance_id, async () => {
      const record = this.records.get(id);
      if (!record) return;
      record.state = 'deleting';
      await this.store.save(record);
      await this.destroy(record);
      // The instance's port goes with its server (only here: a launch taken apart half-way, at a
      // failure or at the next start, keeps it for the launch retried on its address).
      await this.dropPort(record.instance_id);
    });
  }

  /** Forgets the instance's port; its address is freed unless a server holds it. */
  private async dropPort(instanceId: string): Promise<void> {
    const removed = await this.ports.remove(instanceId);
    if (removed) this.freeAddress(removed.address);
  }

  /**
   * An address goes back to the free ones once nothing holds it: no port, and no server record
   * in any state (a launch taken apart half-way may share its port's address with its retry).
   */
  private freeAddress(address: string): void {
    if (this.ports.holds(address)) return;
    for (const record of this.records.values()) if (record.address === address) return;
    this.addresses.delete(address);
  }

  /**
   * The instance's port (ports.ts): the address its server has, or will have once launched.
   * Idempotent; after the launch it answers the server's address.
   */
  async createPort(instanceId: string, manager: string): Promise<ServerAddress[]> {
    const port = defaultPortFor(manager);
    return this.lock.run(instanceId, async () => {
      const server = this.byInstance(instanceId);
      if (server) return addressesOf(server);
      const record = await this.ports.create(instanceId, port);
      return [{ address: record.address, type: 'private' }];
    });
  }

  /** Removes the instance's port; a server launched on it keeps its address. Idempotent. */
  async deletePort(instanceId: string): Promise<void> {
    await this.lock.run(instanceId, () => this.dropPort(instanceId));
  }

  /**
   * A replica set's writer endpoint leads to `serverId` from now on (created the first time).
   * Undefined when the server is unknown.
   */
  async pointWriter(id: string, serverId: string): Promise<{ address: string; port: number } | undefined> {
    const server = isServerId(serverId) ? this.records.get(serverId) : undefined;
    if (server?.state !== 'running') return undefined;
    return this.lock.run(`writer:${id}`, async () => {
      const target = { address: server.address ?? '127.0.0.1', port: server.port };
      const w = await this.writers.point(id, serverId, target);
      await this.isolation.allowWriter(id, { address: w.address, port: w.port, serverId });
      return { address: w.address, port: w.port };
    });
  }

  /** The writer endpoint goes: listener, record, address and rules. Unknown ids: nothing to do. */
  async removeWriter(id: string): Promise<void> {
    await this.lock.run(`writer:${id}`, async () => {
      await this.writers.remove(id);
      await this.isolation.allowWriter(id, undefined);
    });
  }

  /** A new `access` for a running server: its firewall rules change for the next connection. */
  async applyAccess(id: string, access: ServerAccess): Promise<boolean> {
    const known = isServerId(id) ? this.records.get(id) : undefined;
    if (!known) return false;
    return this.lock.run(known.instance_id, async () => {
      const record = this.records.get(id);
      if (record?.state !== 'running') return false;
      record.access = access;
      await this.store.save(record);
      await this.isolation.allow(record);
      return true;
    });
  }

  /**
   * Nova's resize for a local server: its cgroups take the flavor's limits, and its record and
   * agent config the flavor (a reboot recreates the cgroups from the record). The engine was
   * stopped by the workflow; it starts again inside the new limits.
   */
  async resize(id: string, flavor: ServerSpec['flavor']): Promise<boolean> {
    return this.withRunning(id, async (record) => {
      await this.isolation.resize(record, flavor);
      record.flavor = flavor;
      await this.rewriteConfig(record, (config) => {
        config.flavor = flavor;
      });
      await this.store.save(record);
    });
  }

  /** Cinder's extend for a local server: the volume grows while it stays mounted and in use. */
  async extendVolume(id: string, sizeGb: number): Promise<boolean> {
    return this.withRunning(id, async (record) => {
      if (sizeGb < record.volume_size_gb)
        throw new RangeError(`the volume is ${record.volume_size_gb} GB; it cannot shrink to ${sizeGb} GB`);
      await this.isolation.extendVolume(record, sizeGb);
      record.volume_size_gb = sizeGb;
      await this.rewriteConfig(record, (config) => {
        config.volume_size_gb = sizeGb;
      });
      await this.store.save(record);
    });
  }

  /**
   * Nova's os-stop, as a failover's fence uses it: the agent and the engine are killed at once
   * (a frozen engine cannot stop politely, and a fenced source must not serve one more write),
   * the server stays with its volume, SHUTDOWN, and no host restart boots it until os-start.
   */
  async stop(id: string): Promise<boolean> {
    return this.withRunning(id, async (record) => {
      record.stopped = true;
      await this.store.save(record);
      await this.stopAgent(record);
      await this.stopEngines(record, FENCE_GRACE_MS);
      delete record.agentPid;
      await this.store.save(record);
    });
  }

  /**
   * Nova's os-start: the server's agent starts again, and starts its engine unless the engine
   * still answers (an agent that died alone comes back beside the engine it left serving).
   */
  async start(id: string): Promise<boolean> {
    return this.withRunning(id, async (record) => {
      if (record.agentPid && (await runs(record.agentPid, record.configPath))) return;
      delete record.stopped;
      await this.isolation.resume(record);
      await this.startAgent(record, 'SHUTDOWN');
    });
  }

  /**
   * Nova's reboot: the agent and the engine stop (the engine as at a host restart, with its grace
   * time) and the agent starts again, which starts the engine on the same data. A stopped server
   * boots too, as Nova's hard reboot boots a SHUTOFF one.
   */
  async reboot(id: string): Promise<boolean> {
    return this.withRunning(id, async (record) => {
      await this.stopAgent(record);
      await this.stopEngines(record, ENGINE_GRACE_MS);
      delete record.agentPid;
      delete record.stopped;
      await this.isolation.resume(record);
      await this.startAgent(record, 'SHUTDOWN');
    });
  }

  /**
   * Nova's rebuild with the host's image: as a reboot, the agent and the engine stop; then, as
   * Trove unmounts the data volume before Nova rebuilds, the volume is unmounted, the image is
   * installed on the server's root (its own copy of the current agent bundle, outside the volume)
   * and the volume mounted again; the fresh agent starts, and starts the engine on the kept data.
   * What it replaces: until then the server ran the shared bundle path the host was started with
   * (an agent adopted across a restart of the cloud still runs the code it loaded then); from
   * now on it runs its own copy of the image, across reboots, until another rebuild.
   */
  async rebuild(id: string, imageId: string): Promise<boolean> {
    const image = this.opts.image;
    if (!image || image.id !== imageId) throw new UnknownImage(imageId);
    return this.withRunning(id, async (record) => {
      await this.stopAgent(record);
      await this.stopEngines(record, ENGINE_GRACE_MS);
      delete record.agentPid;
      delete record.stopped;
      await this.isolation.suspend(record);
      record.image = await this.install(record.id, image);
      await this.store.save(record);
      await this.isolation.resume(record);
      await this.startAgent(record, 'SHUTDOWN');
      this.opts.log(`rebuilt ${id} (instance ${record.instance_id}) with image ${image.id}`);
    });
  }

  /** The host's image, if it has one (Glance's show). */
  image(imageId?: string): LocalImage | undefined {
    const image = this.opts.image;
    return image && (imageId === undefined || image.id === imageId) ? image : undefined;
  }

  /**
   * The server's root, outside its volume: a fresh copy of the image's bundle (its entry, the
   * chunks the entry imports on demand and their source maps), nothing else.
   */
  private async install(serverId: string, image: LocalImage): Promise<{ id: string; bundle: string }> {
    const root = this.rootOf(serverId);
    await rm(root, { recursive: true, force: true });
    await mkdir(dirname(root), { recursive: true, mode: 0o700 });
    await cp(dirname(image.bundle), root, { recursive: true });
    await chmod(root, 0o700);
    return { id: image.id, bundle: join(root, basename(image.bundle)) };
  }

  private rootOf(serverId: string): string {
    return join(this.computeDir, 'roots', serverId);
  }

  /** The memory limit of the server's cgroup now, in bytes (undefined without isolation). */
  async memoryLimit(id: string): Promise<number | undefined> {
    return isServerId(id) ? this.isolation.memoryLimit(id) : undefined;
  }

  /** Runs `change` on a running server under its lock; false when there is no such server. */
  private async withRunning(id: string, change: (record: ServerRecord) => Promise<void>): Promise<boolean> {
    const known = isServerId(id) ? this.records.get(id) : undefined;
    if (!known) return false;
    return this.lock.run(known.instance_id, async () => {
      const record = this.records.get(id);
      if (record?.state !== 'running') return false;
      await change(record);
      return true;
    });
  }

  /** The agent's config file (0600, holds the key), changed in place through a rename. */
  private async rewriteConfig(record: ServerRecord, change: (config: AgentConfigFile) => void) {
    const config = JSON.parse(await readFile(record.configPath, 'utf8')) as AgentConfigFile;
    change(config);
    const tmp = `${record.configPath}.tmp`;
    await writeFile(tmp, JSON.stringify(config, null, 2), { mode: 0o600 });
    await rename(tmp, record.configPath);
  }

  /**
   * Deletes every server for good (user, volume, cgroups, rules, data) and the host's firewall
   * table: before a state dir is removed, so that nothing it held outlives it.
   */
  async destroyAll(): Promise<void> {
    await this.lock.idle();
    for (const w of this.writers.list()) await this.writers.remove(w.id);
    const results = await Promise.allSettled(
      [...this.records.values()].map((r) => this.lock.run(r.instance_id, () => this.destroy(r))),
    );
    await this.isolation.removeFirewall();
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [message(r.reason)] : []));
    if (failures.length) throw new Error(`some guests could not be removed: ${failures.join('; ')}`);
  }

  /** Stops every agent and engine (the guests "power off"); data and records stay. */
  async stopAll(): Promise<void> {
    await this.lock.idle();
    await this.spares.close();
    await this.writers.closeAll();
    const results = await Promise.allSettled(
      [...this.records.values()].map((r) =>
        this.lock.run(r.instance_id, async () => {
          await this.stopAgent(r);
          await this.stopEngines(r, ENGINE_GRACE_MS);
          await this.isolation.suspend(r);
          await this.store.save(r);
        }),
      ),
    );
    // One guest that will not stop must not keep the others running.
    // Powered off, nothing listens on their addresses: the rules go, the next start writes them again.
    await this.isolation.removeFirewall().catch((err) => this.opts.log(`removing firewall rules: ${err}`));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [message(r.reason)] : []));
    for (const failure of failures) this.opts.log(`stopping guests: ${failure}`);
    if (failures.length) throw new Error(`some guests did not stop: ${failures.join('; ')}`);
  }

  async idle(): Promise<void> {
    await this.lock.idle();
  }

  private byInstance(instanceId: string): ServerRecord | undefined {
    return [...this.records.values()].find((r) => r.instance_id === instanceId && r.state === 'running');
  }

  private async view(record: ServerRecord): Promise<Server> {
    const server: Server = {
      id: record.id,
      instance_id: record.instance_id,
      status: 'SHUTDOWN',
      addresses: addressesOf(record),
    };
    if (record.agentPid && (await runs(record.agentPid, record.configPath))) server.status = 'ACTIVE';
    else if (record.stopped) server.fault = 'the server was stopped (os-stop); os-start boots it';
    else if (record.failure) Object.assign(server, record.failure);
    else server.fault = `the guest agent is not running; see ${this.agentLogOf(record.id)}`;
    return server;
  }

  /** A recorded server found at start-up: adopt its running agent, or reboot the guest. */
  private async recover(record: ServerRecord): Promise<void> {
    if (record.launching) {
      // Half made (no config, or no agent told to start): nothing in it is worth keeping, and a
      // reboot could not give it what it lacks. Marked for deletion first, so that it is never
      // served and a delete that fails now is finished by a later start.
      this.opts.log(`${record.id}: its launch did not finish (the host died during it): taking it apart`);
      delete record.launching;
      record.state = 'deleting';
      await this.store.save(record);
    }
    if (record.state === 'deleting') {
      await this.destroy(record).catch((err) => this.opts.log(`${record.id}: delete still failing: ${err}`));
      return;
    }
    // The host's firewall table is written afresh at every start: each server's rules again.
    await this.isolation.allow(record);
    if (record.stopped) {
      this.opts.log(`${record.id} stays stopped (os-stop)`);
      return;
    }
    if (record.agentPid && (await runs(record.agentPid, record.configPath))) {
      this.opts.log(`adopted ${record.id} (agent pid ${record.agentPid})`);
      return;
    }
    // A host that died between spawning an agent and recording its pid: find the agent by its
    // config path rather than start a second one beside it.
    const [found] = await findByCmdline(record.configPath);
    if (found) {
      record.agentPid = found;
      await this.store.save(record);
      this.opts.log(`adopted ${record.id} (agent pid ${found}, found by its config path)`);
      return;
    }
    // A reboot leaves nothing running: an engine the dead agent left behind is stopped first,
    // so that the new agent starts its engine on the existing data without a second copy.
    try {
      await this.isolation.resume(record);
      await this.stopEngines(record, ENGINE_GRACE_MS);
    } catch (err) {
      record.failure = { status: 'SHUTDOWN', fault: message(err) };
      await this.store.save(record);
      this.opts.log(`${record.id}: ${record.failure.fault}`);
      return;
    }
    await this.startAgent(record, 'SHUTDOWN');
    this.opts.log(
      record.failure
        ? `${record.id}: could not restart its agent: ${record.failure.fault}`
        : `restarted the agent of ${record.id} (pid ${record.agentPid})`,
    );
  }

  /** Spawns the agent; a failure to start is recorded as `failStatus` with a fault, not thrown. */
  private async startAgent(record: ServerRecord, failStatus: 'ERROR' | 'SHUTDOWN'): Promise<void> {
    delete record.agentPid;
    try {
      record.agentPid = (await this.spawnAgent(record)).pid;
      delete record.failure;
    } catch (err) {
      record.failure = { status: failStatus, fault: `the guest agent could not be started: ${message(err)}` };
    }
    await this.store.save(record);
  }

  /**
   * The agent's process, detached (it outlives this host). `ahead`: spawned ahead of its launch
   * (AWAIT_LAUNCH_FLAG, the datastore manager whose module it loads meanwhile), its stdin a pipe
   * for confirmLaunch's word.
   */
  private async spawnAgent(
    record: Pick<ServerRecord, 'id' | 'configPath' | 'image'>,
    ahead?: string,
  ): Promise<ChildProcess> {
    const { command, args } = this.opts.agentCommand(record.configPath, record.image?.bundle);
    // The log is a file, not a pipe: the agent keeps writing after this host has exited. Outside
    // the server's volume, which is not mounted yet when an agent starts ahead of its launch.
    const logFd = openSync(this.agentLogOf(record.id), 'a', 0o600);
    try {
      const child = spawn(command, ahead ? [...args, AWAIT_LAUNCH_FLAG, ahead] : args, {
        cwd: this.opts.repoRoot,
        // V8's code cache of the agent's bundle, shared by this host's agents (root's, as they
        // are): node compiles less of the SDK at each start (~20-30 ms of a ~200 ms start).
        env: {
          ...agentEnvironment(this.opts.agentEnv),
          NODE_COMPILE_CACHE: join(this.computeDir, 'compile-cache'),
        },
        detached: true,
        stdio: [ahead ? 'pipe' : 'ignore', logFd, logFd],
      });
      await new Promise<void>((ok, fail) => {
        child.once('spawn', ok);
        child.once('error', fail);
      });
      child.unref();
      return child;
    } finally {
      closeSync(logFd);
    }
  }

  /** The agent spawned ahead of its launch reads its config and starts: the server is made. */
  private async confirmLaunch(record: ServerRecord, agent: ChildProcess): Promise<void> {
    const stdin = agent.stdin;
    if (!stdin) throw new Error('the guest agent started ahead of its launch has no stdin');
    await new Promise<void>((ok, fail) => {
      stdin.once('error', fail);
      // The callback has the write's error (EPIPE: nobody reads any more), before 'error' fires.
      stdin.end(`${LAUNCH_GO}\n`, (err?: Error | null) => (err ? fail(err) : ok()));
    });
    record.agentPid = agent.pid;
    delete record.failure;
    await this.store.save(record);
  }

  /**
   * What spares of a host that was killed left: a log of no server, and the user named after that
   * log's server id (a deleted server's log goes with it, and a launch that failed half-way keeps
   * its record). Only ids from this host's own logs: other hosts on the machine share /etc/passwd,
   * and their users are theirs to remove. A server whose record file exists but could not be read
   * is no spare: its user runs its engine.
   */
  private async removeStrays(): Promise<void> {
    for (const name of await readdir(agentLogDir(this.computeDir)).catch(() => [])) {
      const id = serverOfAgentLog(name);
      if (!id || this.records.has(id) || this.store.exists(id)) continue;
      // Left for the next start, as the spare's close leaves it, rather than keep this host down.
      await this.discardSpare(id).catch((err) => this.opts.log(`spare ${id}: ${message(err)}`));
    }
  }

  /** A spare that no launch took: its user (first: the log is how a restart finds it), its log. */
  private async discardSpare(id: string): Promise<void> {
    await this.isolation.removeUserOf(id);
    await rm(this.agentLogOf(id), { force: true });
  }

  private agentLogOf(serverId: string): string {
    return agentLogPath(this.computeDir, serverId);
  }

  private async stopAgent(record: ServerRecord): Promise<void> {
    // The recorded pid, or else whatever runs this guest's config (a pid that never got recorded).
    const recorded =
      record.agentPid && (await runs(record.agentPid, record.configPath)) ? record.agentPid : undefined;
    const pid = recorded ?? (await findByCmdline(record.configPath))[0];
    if (!pid) return;
    const left = await stopProcesses([pid], {
      signalFor: () => 'SIGTERM',
      graceMs: AGENT_GRACE_MS,
      tree: true,
    });
    if (left.length) throw new Error(`the agent of ${record.id} (pid ${pid}) survived SIGKILL`);
    // Children left in the agent's group (it leads the group: spawned detached). A pid stays
    // reserved while a group of that id exists, so this can only reach the agent's own group.
    trySignal(-pid, 'SIGKILL');
  }

  /**
   * Stops the engine(s) named by pid files under the base dir. Only pids that still belong to
   * this guest (working in or naming its base dir) are signalled: a stale pid file can name a
   * recycled pid. PostgreSQL's fast shutdown is SIGINT (its SIGTERM waits for clients).
   */
  private async stopEngines(record: ServerRecord, graceMs: number): Promise<void> {
    const files = new Set([...record.enginePidFiles, ...(await findPidFiles(record.baseDir))]);
    const signals = new Map<number, NodeJS.Signals>();
    for (const file of files) {
      const pid = await readPidFile(file);
      if (pid && pid !== process.pid && (await belongsTo(pid, record.baseDir)))
        signals.set(pid, basename(file) === 'postmaster.pid' ? 'SIGINT' : 'SIGTERM');
    }
    record.enginePidFiles = [...files];
    if (signals.size === 0) return;
    // The main process alone gets the polite signal (PostgreSQL's backends take SIGINT as
    // "cancel query"); the whole group gets SIGKILL if it is still there after the grace time.
    const left = await stopProcesses([...signals.keys()], {
      signalFor: (pid) => signals.get(pid) ?? 'SIGTERM',
      graceMs,
      tree: false,
    });
    if (left.length) throw new Error(`engine processes of ${record.id} survived SIGKILL: ${left.join(', ')}`);
  }

  /**
   * Processes that name the server's directory but are neither its agent nor an engine of a pid
   * file, nor yet its user's or in its cgroups: an engine's launcher (root, between its fork and
   * `runuser`) stopped there by a signal to the agent's group, seen in the fault soak holding the
   * engine's log open, so that the volume could not be unmounted. They get SIGKILL (which a
   * stopped process does not need to be resumed for) and are waited for.
   */
  private async stopStragglers(record: ServerRecord): Promise<void> {
    const pids = await findByCmdline(record.baseDir);
    if (pids.length === 0) return;
    const left = await stopProcesses(pids, { signalFor: () => 'SIGKILL', graceMs: 5_000, tree: false });
    if (left.length) throw new Error(`processes of ${record.id} survived SIGKILL: ${left.join(', ')}`);
  }

  private async destroy(record: ServerRecord): Promise<void> {
    // Each phase's time is logged: under load a delete can outlast the driver's request timeout
    // (seen in the 150-run fault soak), and the log says which phase took it.
    const phases = new Phases();
    await phases.time('agent', () => this.stopAgent(record));
    await phases.time('engines', () => this.stopEngines(record, ENGINE_DELETE_GRACE_MS));
    await phases.time('stragglers', () => this.stopStragglers(record));
    // Whatever still runs as the instance's user goes with it, then its volume, cgroups and rules.
    await phases.time('isolation', () => this.isolation.release(record));
    await phases.time('files', async () => {
      await rm(record.baseDir, { recursive: true, force: true });
      await rm(this.rootOf(record.id), { recursive: true, force: true });
      await rm(this.agentLogOf(record.id), { force: true });
    });
    await this.store.remove(record.id);
    this.records.delete(record.id);
    if (record.address) this.freeAddress(record.address);
    this.opts.log(`deleted ${record.id} (instance ${record.instance_id}; ${phases})`);
  }
}

/** One address per server on its engine's standard port, as Trove shows a guest's. */
function addressesOf(record: ServerRecord): ServerAddress[] {
  return record.address
    ? [{ address: record.address, type: 'private' }]
    : [{ address: '127.0.0.1', type: 'private', port: record.port }];
}

/** Variables the agent may get, from the host's own settings only (never from a caller's spec). */
const AGENT_ENV_NAMES = new Set([
  'PATH',
  'LANG',
  'TZ',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_REQUEST_CHECKSUM_CALCULATION',
  'AWS_RESPONSE_CHECKSUM_VALIDATION',
]);
const AGENT_ENV_PREFIXES = ['AWS_ENDPOINT_URL', 'TROVELESS_'];
/** Control-plane secrets and endpoints that never reach a guest, whatever the prefix says. */
const AGENT_ENV_DENIED = /SECRET|KEK|KEY|TOKEN|PASSWORD|CA_FILE|COMPUTE/;

/**
 * The agent's environment, built from an allow-list over the host's own settings (the local
 * cloud's endpoints and credentials): nothing a caller sends (a spec's endpoints, NODE_OPTIONS...)
 * reaches it, so no caller can make the root-run agent load code of its choosing. On top, the
 * runtime settings every agent runs with, as on EC2 (lib/compute/agent-runtime.ts).
 */
export function agentEnvironment(settings: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries({ ...process.env, ...settings })) {
    const allowed = AGENT_ENV_NAMES.has(name) || AGENT_ENV_PREFIXES.some((p) => name.startsWith(p));
    if (allowed && !(name.startsWith('TROVELESS_') && AGENT_ENV_DENIED.test(name)) && value !== undefined)
      env[name] = value;
  }
  return { ...env, ...AGENT_RUNTIME_ENV };
}

/**
 * Engines run as their service users (LOCAL_STACK.md pitfall 1), so every directory above a
 * base dir must be searchable by others. Directories from the state dir down are ours to fix;
 * above it only a warning is given.
 */
async function makeTraversable(
  computeDir: string,
  stateDir: string,
  log: (line: string) => void,
): Promise<void> {
  await mkdir(computeDir, { recursive: true, mode: 0o755 });
  await chmod(computeDir, 0o755);
  for (let dir = stateDir; ; dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      if (dir === stateDir) await chmod(dir, (mode & 0o7777) | 0o001);
      else
        log(
          `warning: ${dir} is not searchable by others; engines running as service users cannot reach their data`,
        );
    }
    if (dirname(dir) === dir) break;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
