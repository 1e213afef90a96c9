import { execFile } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  stat,
  statfs,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { FilesystemStats } from './manager.ts';

// Filesystem helpers for instance directories: ownership for the engine's service user, the
// permissions engines insist on, and disk figures without forking du.

export interface Account {
  uid: number;
  gid: number;
}

/** The service user's uid and primary gid, through NSS (id) rather than parsing /etc/passwd. */
export async function account(user: string): Promise<Account> {
  const run = promisify(execFile);
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    run('id', ['-u', user]),
    run('id', ['-g', user]),
  ]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/** mkdir -p, then owner and mode (mkdir's mode is filtered by the umask; chmod is not). */
export async function ensureDir(path: string, owner: Account, mode: number): Promise<void> {
  await mkdir(path, { recursive: true });
  await chown(path, owner.uid, owner.gid);
  await chmod(path, mode);
}

/**
 * Adds o+x to every ancestor of `dir` that lacks it: engines run as their own user and must be
 * able to reach their data dir, but base dirs may sit under a 0700 mkdtemp dir or under /work.
 * Only traversal is granted, never listing.
 */
export async function ensureTraversable(dir: string): Promise<void> {
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    const { mode } = await stat(d);
    if ((mode & 0o001) === 0) await chmod(d, (mode & 0o7777) | 0o001);
  }
}

/** chown -R without following symlinks (a data dir restored from a backup must belong to the engine). */
export async function chownRecursive(path: string, owner: Account): Promise<void> {
  const info = await lstat(path);
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await chownRecursive(join(path, entry), owner);
  }
  if (!info.isSymbolicLink()) await chown(path, owner.uid, owner.gid);
}

/**
 * Makes everything under `dir` durable, for a tool that wrote it without syncing
 * (mariadb-install-db --debug-no-sync): on the instance's own volume one syncfs of that
 * filesystem (`sync -f`), which holds nothing else; on a shared filesystem an fsync of each file
 * and directory, so that other tenants' dirty pages are not flushed with it.
 */
export async function syncTree(dir: string, ownVolume = false): Promise<void> {
  if (ownVolume) {
    await promisify(execFile)('sync', ['-f', dir]);
    return;
  }
  const info = await lstat(dir);
  if (info.isSymbolicLink() || !(info.isFile() || info.isDirectory())) return;
  if (info.isDirectory()) for (const entry of await readdir(dir)) await syncTree(join(dir, entry));
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Bytes the tree under `path` occupies on disk (allocated blocks, as du counts them). */
export async function treeSize(path: string): Promise<number> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch {
    return 0; // removed while walking (engine temp files)
  }
  let size = info.blocks * 512;
  if (info.isDirectory()) {
    const entries = await readdir(path).catch(() => []);
    for (const entry of entries) size += await treeSize(join(path, entry));
  }
  return size;
}

/**
 * total_bytes is the size of the filesystem holding the data dir. On the instance's own volume
 * used_bytes is the filesystem's own figure (what df shows; a full disk shows full); on a shared
 * filesystem it is what the data dir itself occupies, the filesystem's usage being everyone's.
 */
export async function filesystemStats(
  dataDir: string,
  ownVolume = false,
): Promise<FilesystemStats & { free_bytes: number }> {
  const fs = await statfs(dataDir);
  return {
    total_bytes: fs.blocks * fs.bsize,
    used_bytes: ownVolume ? (fs.blocks - fs.bfree) * fs.bsize : await treeSize(dataDir),
    free_bytes: fs.bavail * fs.bsize,
  };
}

/** Writes a file readable by root only, created 0600 from the start (no window where it is wider). */
export async function writeSecret(path: string, content: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}

export async function readIfExists(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** Writes a config file with the given owner and mode (engines refuse or leak world-readable ones). */
export async function writeConfig(
  path: string,
  content: string,
  owner: Account,
  mode = 0o640,
): Promise<void> {
  await writeFile(path, content, { mode });
  await chown(path, owner.uid, owner.gid);
  await chmod(path, mode);
}

/** The last lines written to `path` after byte `offset` (this start's part of an engine log). */
export async function tailFrom(path: string, offset: number, lines = 20): Promise<string> {
  try {
    const text = (await readFile(path)).subarray(offset).toString('utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}
