import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitUntil } from './wait.ts';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Its stdout and stderr, both. */
  logPath: string;
  /** Where this run's output starts in its log (the file is appended to across runs). */
  logOffset: number;
  /** Resolves once everything it wrote is in its log (its output closed, the log flushed). */
  logged: Promise<void>;
  /** Why it could not be spawned at all (ENOENT: no such program), if so. */
  spawnError?: Error;
}

export interface SpawnSpec {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Output goes to <logDir>/<name>.log; the last lines are shown if the process fails to start. */
  logDir: string;
  /** A node child that talks to this process over an IPC channel (child.send / 'message'). */
  ipc?: boolean;
}

/**
 * Starts and stops the local cloud's child processes. Each child leads its own process group,
 * so stopping it also stops whatever it started (serverless-offline's workers, the JVM), and its
 * pid is recorded under the state directory so that a later start can clean up after a crash.
 */
export class ProcessGroup {
  private readonly procs: ManagedProcess[] = [];

  constructor(private readonly pidFile: string) {}

  async start(spec: SpawnSpec): Promise<ManagedProcess> {
    await mkdir(spec.logDir, { recursive: true });
    const logPath = join(spec.logDir, `${spec.name}.log`);
    const logOffset = existsSync(logPath) ? statSync(logPath).size : 0;
    const log = createWriteStream(logPath, { flags: 'a' });
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: spec.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    // Two sources into one file: neither ends it (the first to end would cut the other's last
    // lines, which say why a process exited); the child's 'close' (both closed) does.
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const logged = new Promise<void>((resolve) => {
      log.once('close', () => resolve());
      log.once('error', (err) => {
        // A log that cannot be written (a full disk) must not stop the service: its output, no
        // longer piped anywhere, would fill the pipe and block it. It is drained and dropped.
        console.error(`[troveless] ${spec.name}'s log ${logPath} cannot be written: ${err.message}`);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve();
      });
    });
    child.once('close', () => log.end());
    const managed: ManagedProcess = {
      name: spec.name,
      child,
      exited: new Promise<number | null>((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.once('error', (err) => {
          managed.spawnError = err;
          log.end();
          resolve(-1);
        });
      }),
      logPath,
      logOffset,
      logged,
    };
    // One started again under its name (a supervised restart) replaces the one that exited: a
    // dead leader's pid may be anyone's by the time the group is stopped.
    const replaced = this.procs.findIndex((p) => p.name === spec.name && exitedNow(p));
    if (replaced >= 0) this.procs.splice(replaced, 1);
    this.procs.push(managed);
    await this.savePids();
    return managed;
  }

  /** SIGTERM to `p`'s group, then SIGKILL if it is still alive after the grace period. */
  async stop(p: ManagedProcess, graceMs = 5000): Promise<void> {
    if (!exitedNow(p)) {
      signalGroup(p.child.pid, 'SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(r, graceMs, 'timeout').unref());
      if ((await Promise.race([p.exited, timer])) === 'timeout') signalGroup(p.child.pid, 'SIGKILL');
    }
    // Children of a group leader can outlive it: the whole group goes.
    signalGroup(p.child.pid, 'SIGKILL');
  }

  /** SIGTERM to every group, then SIGKILL to whatever is still alive after the grace period. */
  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p, graceMs)));
    this.procs.length = 0;
    await writeFile(this.pidFile, '[]');
  }

  private async savePids(): Promise<void> {
    const pids = this.procs.map((p) => ({ name: p.name, pid: p.child.pid }));
    await writeFile(this.pidFile, JSON.stringify(pids));
  }
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * A previous run that was killed outright (SIGKILL, a crash) cannot stop its children; the pid
 * file it left names their groups. Only groups whose leader still runs a command we started are
 * signalled, so a reused pid is never touched.
 */
export async function reapLeftovers(pidFile: string, markers: string[]): Promise<string[]> {
  if (!existsSync(pidFile)) return [];
  let entries: { name: string; pid?: number }[] = [];
  try {
    entries = JSON.parse(await readFile(pidFile, 'utf8'));
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const { name, pid } of entries) {
    if (!pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (markers.some((m) => cmdline.includes(m))) {
      signalGroup(pid, 'SIGKILL');
      reaped.push(name);
    }
  }
  await writeFile(pidFile, '[]');
  return reaped;
}

/**
 * Polls `probe` until `proc` answers (waitUntil), failing at once when it exits meanwhile, with
 * why (explainExit): how the local cloud waits for each service it starts.
 */
export function untilReady<T>(
  proc: ManagedProcess,
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  return explainExit(
    proc,
    waitUntil(what, probe, { ...opts, abort: () => (exitedNow(proc) ? 'it exited' : undefined) }),
  );
}

/**
 * `waiting` (a wait for `proc` to be ready), or, when it failed because `proc` exited, the same
 * failure with the exit code and the last lines of its log: what a user needs to see why a
 * service of the local cloud did not start (a port taken, Java missing, a corrupt data dir).
 */
export async function explainExit<T>(proc: ManagedProcess, waiting: Promise<T>): Promise<T> {
  try {
    return await waiting;
  } catch (err) {
    const { child } = proc;
    if (!exitedNow(proc)) throw err;
    // Its output may still be on its way to the log; a grandchild holding the pipe open must not
    // hold up the error, hence the bound.
    await Promise.race([proc.logged, new Promise((r) => setTimeout(r, 2000).unref())]);
    // This run's lines only: the log goes on from earlier runs.
    const tail = await tailOf(proc.logPath, 15, proc.logOffset);
    const how = proc.spawnError
      ? `not started: ${proc.spawnError.message}`
      : child.signalCode
        ? `signal ${child.signalCode}`
        : `exit code ${child.exitCode}`;
    throw new Error(
      `${(err as Error).message} (${how})${tail ? `; the end of ${proc.logPath}:\n${tail}` : `; ${proc.logPath} is empty`}`,
      { cause: err },
    );
  }
}

/**
 * How `proc` ended (its exit code or the signal that ended it), once it has and its whole group is
 * gone: a leader killed outright leaves its children running (a compute host's mkfs, mount or
 * nft), and what starts in its place must not run beside them. The group's id stays reserved
 * while it has members, so signalling it never reaches anyone else's.
 */
export async function howItEnded(proc: ManagedProcess): Promise<string> {
  const code = await proc.exited;
  const pid = proc.child.pid;
  if (pid) {
    signalGroup(pid, 'SIGKILL');
    await waitUntil(`process group ${pid} gone`, async () => (groupAlive(pid) ? undefined : true), {
      timeoutMs: 10_000,
      intervalMs: 20,
    }).catch(() => {});
  }
  return proc.child.signalCode ? `signal ${proc.child.signalCode}` : `exit code ${code}`;
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process has exited (or was never started): by a code, a signal or a spawn error. */
export function exitedNow(proc: ManagedProcess): boolean {
  return proc.child.exitCode !== null || proc.child.signalCode !== null || proc.spawnError !== undefined;
}

/** The last `lines` of the file, from byte `from` on. */
export async function tailOf(path: string, lines = 15, from = 0): Promise<string> {
  try {
    const text = (await readFile(path)).subarray(from).toString('utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
