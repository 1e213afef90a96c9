import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { growFilesystem } from '../../agent/engines/volume.ts';
import { Phases } from '../../lib/phases.ts';
import {
  type CgroupVersion,
  cgroupVersion,
  createCgroups,
  memoryLimitOf,
  removeCgroups,
  setCgroupLimits,
} from './cgroups.ts';
import { Firewall, type FirewallEntry, removeOrphanTables, tableName } from './firewall.ts';
import { tryTool } from './run.ts';
import { createUser, killProcessesOf, removeUser, userNameFor } from './users.ts';
import {
  createVolumeFile,
  formatVolume,
  growVolume,
  mountVolume,
  removeVolume,
  unmountVolume,
  type VolumeFsType,
  volumeFsType,
} from './volumes.ts';

// What makes each server a machine of its own on one host: its own OS user, volume, cgroups and
// firewall rules (its own address is given in every mode, see addresses.ts). It needs root on
// Linux; elsewhere, or with TROVELESS_COMPUTE_ISOLATION=off (the provision bench compares both),
// the host says once which isolation it cannot give and runs without it.

const CGROUP_GROUP = 'troveless';

export interface IsolatedServer {
  id: string;
  baseDir: string;
  /** Absent on records from before servers had their own address: no rules for those. */
  address?: string;
  port: number;
  flavor: { ram: number; vcpus: number };
  volume_size_gb: number;
  /** What the volume is formatted with; records from before the choice existed are ext4. */
  volume_fstype?: VolumeFsType;
  access?: { allowed_cidrs?: string[]; replication_peers?: string[]; peer_ports?: number[] };
  /** Set once the server's isolation exists (user, volume, cgroups): what a delete must undo. */
  isolation?: { osUser: string; uid: number; cgroupProcs: string[] };
}

/** A server's own OS user. */
export interface ServerUser {
  osUser: string;
  uid: number;
}

export class Isolation {
  private constructor(
    private readonly volumesDir: string,
    private readonly cgroups: CgroupVersion | undefined,
    private readonly firewall: Firewall | undefined,
    /** What new volumes are formatted with (volumes.ts says how it is chosen). */
    private readonly fstype: VolumeFsType = 'ext4',
    /** Each server's firewall entry; the table is written from all of them at every change. */
    private readonly entries = new Map<string, FirewallEntry>(),
    /** The writer endpoints' addresses and the server each leads to, by writer id. */
    private readonly writers = new Map<string, { address: string; port: number; serverId: string }>(),
  ) {}

  /** Whether servers get their own user, volume, cgroups and firewall rules. */
  get enabled(): boolean {
    return this.firewall !== undefined;
  }

  static async open(computeDir: string, log: (line: string) => void): Promise<Isolation> {
    const volumesDir = join(computeDir, 'volumes');
    const off = process.env.TROVELESS_COMPUTE_ISOLATION === 'off';
    const root = process.platform === 'linux' && process.getuid?.() === 0;
    const why = off
      ? 'TROVELESS_COMPUTE_ISOLATION=off'
      : !root
        ? 'not running as root on Linux'
        : (await tryTool('nft', ['--version']).catch(() => ({ code: 127 }))).code !== 0
          ? 'nft (Debian package nftables) is missing'
          : undefined;
    if (why) {
      log(
        `isolation off (${why}): instances share OS users and the host's disk, have no memory/CPU limits and no allowed_cidrs rules; each still has its own address`,
      );
      return new Isolation(volumesDir, undefined, undefined);
    }
    await mkdir(volumesDir, { recursive: true, mode: 0o700 });
    const version = cgroupVersion();
    if (!version) log('no cgroup memory/cpu controllers found: instances run without memory and CPU limits');
    const key = createHash('sha256').update(computeDir).digest('hex').slice(0, 10);
    const fstype = await volumeFsType();
    if (fstype === 'xfs' && !process.env.TROVELESS_VOLUME_FSTYPE)
      log('new volumes are XFS: this host may not grow a mounted ext4 (no CAP_SYS_RESOURCE)');
    const removed = await removeOrphanTables(tableName(key), existsSync);
    if (removed.length)
      log(`removed the nftables tables of hosts whose state is gone: ${removed.join(', ')}`);
    return new Isolation(volumesDir, version, new Firewall(tableName(key), computeDir), fstype);
  }

  /** The host's own nftables table (inet family), if it isolates. */
  get firewallTable(): string | undefined {
    return this.firewall?.table;
  }

  imageOf(serverId: string): string {
    return join(this.volumesDir, `${serverId}.img`);
  }

  /**
   * Creates the server's user, volume (mounted at its base dir, which must exist and be empty),
   * cgroups and firewall rules; resolves with each step's time (`user, rules, file, mkfs, mount,
   * cgroups`) and the wall time of all of them (`isolation`), less than their sum: they run side
   * by side. `made`: its user, made already (makeUser), which provide() does not make again.
   * Everything is named after the server id, so release() undoes whatever a failed or
   * interrupted provide() made, recorded or not.
   */
  async provide(server: IsolatedServer, made?: ServerUser): Promise<Phases> {
    const phases = new Phases();
    if (!this.enabled) return phases;
    const t0 = performance.now();
    const osUser = userNameFor(server.id);
    server.volume_fstype = this.fstype;
    const image = this.imageOf(server.id);
    const cgroups = this.cgroups;
    // Independent of one another, so made side by side: useradd waits on the passwd lock and
    // its files while mkfs and mount wait on the disk. Each is awaited to its end even when
    // another fails, so that release() never runs beside a step still making what it undoes.
    const [user, volume, groups] = await Promise.allSettled([
      (async () => {
        // A spare agent's server has its user already (made while no launch waited on it).
        const { uid } = made?.osUser === osUser ? made : await phases.time('user', () => createUser(osUser));
        server.isolation = { osUser, uid, cgroupProcs: [] };
        // Its rules need its uid (its egress is matched by it) and nothing else: in place while
        // the volume is still being made, before anything of the server runs.
        await phases.time('rules', () => this.allow(server));
      })(),
      (async () => {
        await phases.time('file', () => createVolumeFile(image, server.volume_size_gb));
        await phases.time('mkfs', () => formatVolume(image, this.fstype));
        await phases.time('mount', () => mountVolume(image, server.baseDir, this.fstype));
      })(),
      phases.time('cgroups', async () =>
        cgroups ? createCgroups(cgroups, CGROUP_GROUP, server.id, server.flavor) : [],
      ),
    ]);
    if (server.isolation && groups.status === 'fulfilled') server.isolation.cgroupProcs = groups.value;
    for (const step of [user, volume, groups]) if (step.status === 'rejected') throw step.reason;
    phases.add('isolation', performance.now() - t0);
    return phases;
  }

  /**
   * The user of server `serverId`, made ahead of its launch (a spare agent's server: spares.ts);
   * provide() then takes it as it is. Undefined when servers get no users of their own.
   */
  async makeUser(serverId: string): Promise<ServerUser | undefined> {
    if (!this.enabled) return undefined;
    const osUser = userNameFor(serverId);
    return { osUser, ...(await createUser(osUser)) };
  }

  /** Removes the user of a server that was never launched (a spare's): safe when there is none. */
  async removeUserOf(serverId: string): Promise<void> {
    if (this.enabled) await removeUser(userNameFor(serverId));
  }

  /** A resize: the server's cgroups take the new flavor's memory and CPU limits at once. */
  async resize(server: IsolatedServer, flavor: { ram: number; vcpus: number }): Promise<void> {
    if (!this.enabled || !server.isolation || !this.cgroups) return;
    await setCgroupLimits(this.cgroups, CGROUP_GROUP, server.id, flavor);
  }

  /** The memory limit the server's cgroup holds now, in bytes (tests and benches look). */
  async memoryLimit(serverId: string): Promise<number | undefined> {
    return this.cgroups ? memoryLimitOf(this.cgroups, CGROUP_GROUP, serverId) : undefined;
  }

  /** An online extend of the server's volume (still mounted); its filesystem is grown by the guest. */
  async extendVolume(server: IsolatedServer, sizeGb: number): Promise<void> {
    if (!this.enabled || !server.isolation) return;
    await growVolume(this.imageOf(server.id), sizeGb);
    // The filesystem grows here too, not only in the guest's resize_fs (which then finds nothing
    // to do): a tenant who filled the volume would otherwise leave this host no room to rewrite
    // the server's config on it (ENOSPC), and the resize that cures a full disk would fail.
    await growFilesystem(server.baseDir);
  }

  /** After a host restart: the volume mounted again (a reboot unmounts it) and the cgroups there. */
  async resume(server: IsolatedServer): Promise<void> {
    if (!this.enabled || !server.isolation) return;
    await mountVolume(this.imageOf(server.id), server.baseDir, server.volume_fstype);
    if (this.cgroups) await createCgroups(this.cgroups, CGROUP_GROUP, server.id, server.flavor);
  }

  /**
   * A power-off: whatever still runs as the server goes, its cgroups go and its volume is
   * unmounted (no mount or loop device outlives the host); user and image stay for resume().
   */
  async suspend(server: IsolatedServer): Promise<void> {
    if (!this.enabled || !server.isolation) return;
    if (this.cgroups) await removeCgroups(this.cgroups, CGROUP_GROUP, server.id);
    await killProcessesOf(server.isolation.osUser);
    await unmountVolume(this.imageOf(server.id), server.baseDir);
  }

  /** Undoes provide(): cgroups, volume (unmount, loop, image), user. Safe to repeat. */
  async release(server: IsolatedServer): Promise<void> {
    if (!this.enabled) return;
    const osUser = server.isolation?.osUser ?? userNameFor(server.id);
    // Whatever still runs in its cgroups or as its user goes first: it could hold the volume busy.
    if (this.cgroups) await removeCgroups(this.cgroups, CGROUP_GROUP, server.id);
    await killProcessesOf(osUser);
    await removeVolume(this.imageOf(server.id), server.baseDir);
    await removeUser(osUser);
    await this.forget(server.id);
  }

  /** Writes the firewall rules of `server` (its allowed_cidrs, its replica set's peers) at once. */
  async allow(server: IsolatedServer): Promise<void> {
    if (!this.firewall || !server.address) return;
    this.entries.set(server.id, {
      key: firewallKey(server.id),
      address: server.address,
      port: server.port,
      allowedCidrs: server.access?.allowed_cidrs,
      uid: server.isolation?.uid,
      peers: server.access?.replication_peers?.map(firewallKey),
      extraPorts: server.access?.peer_ports,
    });
    await this.firewall.apply(this.rules());
  }

  async forget(serverId: string): Promise<void> {
    if (!this.firewall || !this.entries.delete(serverId)) return;
    await this.firewall.apply(this.rules());
  }

  /**
   * A writer endpoint's rules (writers.ts): clients reach it from its server's allowed_cidrs,
   * and its server admits the connections it forwards. Undefined `writer`: the rules go.
   */
  async allowWriter(id: string, writer: { address: string; port: number; serverId: string } | undefined) {
    if (!this.firewall) return;
    if (writer) this.writers.set(id, writer);
    else if (!this.writers.delete(id)) return;
    await this.firewall.apply(this.rules());
  }

  /** Every entry: the servers' (admitting their writers) and the writers' own. */
  private rules(): FirewallEntry[] {
    const out: FirewallEntry[] = [];
    for (const [serverId, entry] of this.entries) {
      const admit = [...this.writers.values()].filter((w) => w.serverId === serverId).map((w) => w.address);
      out.push(admit.length ? { ...entry, admit } : entry);
    }
    for (const [id, w] of this.writers) {
      const target = this.entries.get(w.serverId);
      // A writer whose server has no rules (gone, or not started again yet) admits nobody.
      out.push({
        key: `w${id.replaceAll('-', '')}`,
        address: w.address,
        port: w.port,
        allowedCidrs: target ? target.allowedCidrs : ['127.0.0.0/32'],
      });
    }
    return out;
  }

  /** The host's whole table goes (its guests are powered off or deleted). */
  async removeFirewall(): Promise<void> {
    this.entries.clear();
    this.writers.clear();
    await this.firewall?.remove();
  }
}

function firewallKey(serverId: string): string {
  return serverId.replace(/^srv-/, '').replaceAll('-', '');
}
