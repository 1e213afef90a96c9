import type { Dirent } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join, sep } from 'node:path';

// Process helpers for the compute host, read from /proc (Linux only, like the engines it runs).
// Guests outlive the host that launched them, so the host cannot rely on ChildProcess handles:
// everything it knows about a guest's processes is a pid plus what /proc says about that pid.

async function procStat(pid: number): Promise<{ state: string; pgid: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgid: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

/** A zombie counts as gone: nobody may reap an orphan (pid 1 is not always an init). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

export async function cmdlineOf(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** The pid still runs a command naming `marker` (guards against a recycled pid). */
export async function runs(pid: number, marker: string): Promise<boolean> {
  return (await isAlive(pid)) && (await cmdlineOf(pid)).includes(marker);
}

/** Live processes whose command line names `marker` (the guest's config path is unique to it). */
export async function findByCmdline(marker: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);
  const found: number[] = [];
  for (const pid of pids) if (pid !== process.pid && (await runs(pid, marker))) found.push(pid);
  return found;
}

/** The process works in `dir` or names it on its command line: it belongs to that guest. */
export async function belongsTo(pid: number, dir: string): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  try {
    const cwd = await readlink(`/proc/${pid}/cwd`);
    if (cwd === dir || cwd.startsWith(dir + sep)) return true;
  } catch {
    // another user's process when the host is not root: fall back to the command line
  }
  return (await cmdlineOf(pid)).includes(dir);
}

let ownGroup: number | undefined;

/** Signals the process's whole group (never the host's own) and the process itself. */
export async function signalTree(pid: number, signal: NodeJS.Signals): Promise<void> {
  ownGroup ??= (await procStat(process.pid))?.pgid;
  const pgid = (await procStat(pid))?.pgid;
  if (pgid && pgid > 1 && pgid !== ownGroup) trySignal(-pgid, signal);
  trySignal(pid, signal);
}

export function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Polls /proc until every pid is gone; returns the ones still alive at the deadline. */
export async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive: number[] = [];
    for (const pid of pids) if (await isAlive(pid)) alive.push(pid);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stops processes: `signalFor(pid)` first, SIGKILL to their groups after `graceMs`, and waits
 * (bounded) until they are gone. Returns the pids that survived even SIGKILL.
 */
export async function stopProcesses(
  pids: number[],
  {
    signalFor,
    graceMs,
    tree,
  }: { signalFor: (pid: number) => NodeJS.Signals; graceMs: number; tree: boolean },
): Promise<number[]> {
  for (const pid of pids) {
    if (tree) await signalTree(pid, signalFor(pid));
    else trySignal(pid, signalFor(pid));
  }
  const left = await waitGone(pids, graceMs);
  for (const pid of left) await signalTree(pid, 'SIGKILL');
  return waitGone(left, 5000);
}

/**
 * Every pid file below `dir` (`*.pid`, which includes PostgreSQL's postmaster.pid), bounded in
 * depth so that a big data directory is not walked file by file. Symlinks are not followed.
 */
export async function findPidFiles(dir: string, depth = 4): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isFile() && entry.name.endsWith('.pid')) found.push(path);
    else if (entry.isDirectory() && depth > 1) found.push(...(await findPidFiles(path, depth - 1)));
  }
  return found;
}

/** The pid on a pid file's first line (postmaster.pid has more lines after it). */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const first = (await readFile(path, 'utf8')).split('\n', 1)[0]?.trim() ?? '';
    const pid = /^\d+$/.test(first) ? Number(first) : Number.NaN;
    return pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}
