import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// The flavor's memory and CPU as cgroup limits. cgroup v1 (separate memory and cpu hierarchies,
// as on this machine) or v2 (one unified hierarchy), whichever the machine mounts. The engine
// joins them itself before it execs (agent/engines/process.ts), given the cgroup.procs paths.

const ROOT = '/sys/fs/cgroup';
const PERIOD_US = 100_000;

export type CgroupVersion = 'v1' | 'v2';

export function cgroupVersion(): CgroupVersion | undefined {
  if (existsSync(join(ROOT, 'cgroup.controllers'))) return 'v2';
  if (
    existsSync(join(ROOT, 'memory', 'memory.limit_in_bytes')) &&
    existsSync(join(ROOT, 'cpu', 'cpu.shares'))
  )
    return 'v1';
  return undefined;
}

/** The cgroup directories of one server (one per v1 controller, or one v2 group). */
export function cgroupDirs(version: CgroupVersion, group: string, serverId: string): string[] {
  return version === 'v2'
    ? [join(ROOT, group, serverId)]
    : [join(ROOT, 'memory', group, serverId), join(ROOT, 'cpu', group, serverId)];
}

/** Creates the server's cgroups with the flavor's limits; returns the cgroup.procs files to join. */
export async function createCgroups(
  version: CgroupVersion,
  group: string,
  serverId: string,
  flavor: { ram: number; vcpus: number },
): Promise<string[]> {
  if (version === 'v2') {
    const parent = join(ROOT, group);
    await mkdir(parent, { recursive: true });
    // Controllers are handed down level by level; a level that has them already accepts it again.
    await writeFile(join(ROOT, 'cgroup.subtree_control'), '+memory +cpu');
    await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +cpu');
    const [dir = ''] = cgroupDirs(version, group, serverId);
    await mkdir(dir, { recursive: true });
    await setCgroupLimits(version, group, serverId, flavor);
    return [join(dir, 'cgroup.procs')];
  }
  const [memory = '', cpu = ''] = cgroupDirs(version, group, serverId);
  await mkdir(memory, { recursive: true });
  await mkdir(cpu, { recursive: true });
  await setCgroupLimits(version, group, serverId, flavor);
  return [join(memory, 'cgroup.procs'), join(cpu, 'cgroup.procs')];
}

/**
 * Writes the flavor's limits into the server's existing cgroups: at create, and at a resize
 * (Nova's resize of a running server's flavor), where the processes already in them stay.
 */
export async function setCgroupLimits(
  version: CgroupVersion,
  group: string,
  serverId: string,
  flavor: { ram: number; vcpus: number },
): Promise<void> {
  const bytes = String(flavor.ram * 1024 * 1024);
  const quota = String(flavor.vcpus * PERIOD_US);
  if (version === 'v2') {
    const [dir = ''] = cgroupDirs(version, group, serverId);
    await writeFile(join(dir, 'memory.max'), bytes);
    await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => {});
    await writeFile(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
    await writeFile(join(dir, 'cpu.weight'), String(Math.min(10_000, 100 * flavor.vcpus)));
    return;
  }
  const [memory = '', cpu = ''] = cgroupDirs(version, group, serverId);
  await writeFile(join(memory, 'memory.limit_in_bytes'), bytes);
  await writeFile(join(cpu, 'cpu.shares'), String(1024 * flavor.vcpus));
  await writeFile(join(cpu, 'cpu.cfs_period_us'), String(PERIOD_US));
  await writeFile(join(cpu, 'cpu.cfs_quota_us'), quota);
}

/** The memory limit the server's cgroup holds now, in bytes (undefined without its cgroup). */
export async function memoryLimitOf(
  version: CgroupVersion,
  group: string,
  serverId: string,
): Promise<number | undefined> {
  const [memory = ''] = cgroupDirs(version, group, serverId);
  const file = join(memory, version === 'v2' ? 'memory.max' : 'memory.limit_in_bytes');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

/** Kills what is left in the server's cgroups and removes them. Safe to repeat. */
export async function removeCgroups(version: CgroupVersion, group: string, serverId: string): Promise<void> {
  for (const dir of cgroupDirs(version, group, serverId)) {
    if (!existsSync(dir)) continue;
    for (let attempt = 0; ; attempt++) {
      const pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map(Number);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= 100) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
