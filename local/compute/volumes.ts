import { open, readFile, rm } from 'node:fs/promises';
import { tool, tryTool } from './run.ts';

// Cinder's place: each instance's volume is a sparse file of exactly its size, formatted ext4 (or
// XFS, see volumeFsType) and loop-mounted at the instance's base dir, so a full disk is a real
// full disk (the engine gets ENOSPC) and the filesystem's own figures are the instance's usage.

const GIB = 1024 ** 3;

/** Trove's volume_fstype: what each new volume is formatted with. */
export type VolumeFsType = 'ext4' | 'xfs';

/** CAP_SYS_RESOURCE: the kernel grows a mounted ext4 (EXT4_IOC_RESIZE_FS) only for it. */
const CAP_SYS_RESOURCE = 24n;

/**
 * The filesystem of new volumes: TROVELESS_VOLUME_FSTYPE if set, else ext4 where this host may
 * grow a mounted ext4, else XFS when its tools are there. A container without CAP_SYS_RESOURCE
 * (as this project's CI) cannot resize2fs a mounted ext4 ("Permission denied to resize
 * filesystem"), while xfs_growfs needs only CAP_SYS_ADMIN, which mounting needs anyway; so a
 * resize volume stays online (a writer never stops) on such a host too.
 */
export async function volumeFsType(env: NodeJS.ProcessEnv = process.env): Promise<VolumeFsType> {
  const wanted = env.TROVELESS_VOLUME_FSTYPE;
  if (wanted === 'ext4' || wanted === 'xfs') return wanted;
  if (wanted) throw new Error(`TROVELESS_VOLUME_FSTYPE must be ext4 or xfs, not ${wanted}`);
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  if ((effective >> CAP_SYS_RESOURCE) & 1n) return 'ext4';
  return (await tryTool('mkfs.xfs', ['-V']).catch(() => ({ code: 127 }))).code === 0 ? 'xfs' : 'ext4';
}

/**
 * The image itself: a new sparse file of exactly `sizeGb` (an existing one is an error), nothing
 * written but what formatVolume puts there.
 */
export async function createVolumeFile(image: string, sizeGb: number): Promise<void> {
  const handle = await open(image, 'wx', 0o600);
  try {
    await handle.truncate(sizeGb * GIB);
  } finally {
    await handle.close();
  }
}

/**
 * Formats the image with `fstype`. Lazy inode and journal init keep mkfs.ext4 at a few tens of ms
 * whatever the size; no reserved blocks, so the tenant gets the whole size.
 */
export async function formatVolume(image: string, fstype: VolumeFsType = 'ext4'): Promise<void> {
  // XFS: no discard of a sparse file's blocks (-K); its log and metadata take ~4% of 1 GB.
  if (fstype === 'xfs') {
    await tool('mkfs.xfs', ['-q', '-f', '-K', image]);
    return;
  }
  await tool('mkfs.ext4', [
    '-q',
    '-F',
    '-m',
    '0',
    '-E',
    'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
    image,
  ]);
}

/**
 * Cinder's extend, online: the image grows to `sizeGb` (sparse, nothing written) and every loop
 * device backed by it learns its new capacity (`losetup -c`), while the filesystem stays mounted
 * and in use; the filesystem is grown by the caller (isolation.ts, then the guest's `resize_fs`). A smaller size is a
 * RangeError (neither a mounted ext4 nor XFS can shrink); the same size changes nothing.
 */
export async function growVolume(image: string, sizeGb: number): Promise<void> {
  const handle = await open(image, 'r+');
  try {
    const { size } = await handle.stat();
    if (sizeGb * GIB < size)
      throw new RangeError(`the volume is ${size / GIB} GB; it cannot shrink to ${sizeGb} GB`);
    if (sizeGb * GIB > size) await handle.truncate(sizeGb * GIB);
  } finally {
    await handle.close();
  }
  for (const device of await loopDevicesOf(image)) await tool('losetup', ['-c', device]);
}

/** Mounts the image at `dir` through a loop device that goes away when it is unmounted. */
export async function mountVolume(image: string, dir: string, fstype: VolumeFsType = 'ext4'): Promise<void> {
  if (await isMounted(dir)) return;
  // nosuid/nodev/noexec: nothing on a tenant's volume is a program or a device.
  await tool('mount', ['-t', fstype, '-o', 'loop,nosuid,nodev,noexec', image, dir]);
}

/**
 * Unmounts `dir` (retried while the last processes let go of it) and detaches any loop device
 * still backed by the image; the image stays (a powered-off server keeps its disk). Safe to repeat.
 */
export async function unmountVolume(image: string, dir: string): Promise<void> {
  for (let attempt = 0; await isMounted(dir); attempt++) {
    const out = await tryTool('umount', [dir]);
    if (out.code === 0) continue;
    if (attempt >= 50) throw new Error(`umount ${dir} failed: ${out.stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const device of await loopDevicesOf(image)) await tryTool('losetup', ['-d', device]);
}

/** unmountVolume, then the image goes too. Safe to repeat; each part that is already gone is skipped. */
export async function removeVolume(image: string, dir: string): Promise<void> {
  await unmountVolume(image, dir);
  await rm(image, { force: true });
}

export async function isMounted(dir: string): Promise<boolean> {
  const mounts = await readFile('/proc/mounts', 'utf8');
  return mounts.split('\n').some((line) => unescapeMount(line.split(' ')[1] ?? '') === dir);
}

/** Loop devices backed by `image` (losetup -j). */
export async function loopDevicesOf(image: string): Promise<string[]> {
  const out = await tryTool('losetup', ['-j', image]);
  return out.stdout
    .split('\n')
    .map((line) => line.split(':')[0] ?? '')
    .filter(Boolean);
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}
