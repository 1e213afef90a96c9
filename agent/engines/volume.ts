import { execFile } from 'node:child_process';
import { readFile, realpath } from 'node:fs/promises';

// Trove's resize_fs (online): once the compute layer has extended the block device under the
// instance's volume (a loop device's capacity refreshed locally, EBS ModifyVolume on EC2), the
// mounted filesystem is grown to fill it (ext4: resize2fs, XFS: xfs_growfs) while the engine
// keeps serving.

const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/** The device and filesystem mounted at `dir` (the last mount there wins, as the kernel shows it). */
export async function mountAt(
  dir: string,
): Promise<{ device: string; fstype: string; point: string } | undefined> {
  const target = await realpath(dir);
  const mounts = await readFile('/proc/mounts', 'utf8');
  let found: { device: string; fstype: string; point: string } | undefined;
  for (const line of mounts.split('\n')) {
    const [source, point, fstype] = line.split(' ');
    if (source && point && fstype && unescapeMount(point) === target)
      found = { device: unescapeMount(source), fstype, point: target };
  }
  return found;
}

/** Grows the filesystem mounted at `dir` to its device's size; nothing to do is no error. */
export async function growFilesystem(dir: string): Promise<void> {
  const mount = await mountAt(dir);
  if (!mount?.device.startsWith('/dev/')) throw new Error(`no block device is mounted at ${dir}`);
  const [command, args] =
    mount.fstype === 'xfs'
      ? ['xfs_growfs', [mount.point]]
      : mount.fstype.startsWith('ext')
        ? ['resize2fs', [mount.device]]
        : [undefined, []];
  if (!command) throw new Error(`cannot grow a ${mount.fstype} filesystem online`);
  await new Promise<void>((resolve, reject) => {
    execFile(command, args, { env: TOOL_ENV, timeout: 600_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}
