import { execFile } from 'node:child_process';
import { readFile, realpath } from 'node:fs/promises';

// Trove's resize_fs (online): once the compute layer has extended the block device under the
// instance's volume (a loop device's capacity refreshed locally, EBS ModifyVolume on EC2), the
// mounted ext4 is grown to fill it with resize2fs, while the engine keeps serving.

const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/** The device mounted at `dir` (the last mount there wins, as the kernel shows it). */
export async function deviceMountedAt(dir: string): Promise<string | undefined> {
  const target = await realpath(dir);
  const mounts = await readFile('/proc/mounts', 'utf8');
  let device: string | undefined;
  for (const line of mounts.split('\n')) {
    const [source, point] = line.split(' ');
    if (source && point && unescapeMount(point) === target) device = unescapeMount(source);
  }
  return device;
}

/** Grows the ext4 filesystem mounted at `dir` to its device's size; nothing to do is no error. */
export async function growFilesystem(dir: string): Promise<void> {
  const device = await deviceMountedAt(dir);
  if (!device?.startsWith('/dev/')) throw new Error(`no block device is mounted at ${dir}`);
  await new Promise<void>((resolve, reject) => {
    execFile('resize2fs', [device], { env: TOOL_ENV, timeout: 600_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`resize2fs ${device} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}
