import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { connect } from 'node:net';

// Process plumbing shared by the engine managers: engines run as their service user through
// runuser, detached from the agent, and are found again through their own pid files so that an
// agent restarted from scratch can still stop or inspect them.

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a short command (initdb, mariadb-install-db) as `user` and waits for it. The error of a
 * failed run carries the command's own output, which is what explains the failure.
 */
export function runAs(
  user: string,
  command: string,
  args: string[],
  { cwd = '/', timeoutMs = 120_000 }: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'runuser',
      ['-u', user, '--', command, ...args],
      { cwd, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, env: engineEnv() },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        // The tail of the output is often the tool's generic advice: its own error lines first.
        const lines = `${stderr}\n${stdout}`.trim().split('\n');
        const errors = lines.filter((l) => /\berror\b/i.test(l)).slice(0, 5);
        const tail = lines.slice(-15).filter((l) => !errors.includes(l));
        const how = err.killed
          ? `killed after ${timeoutMs} ms`
          : err.signal
            ? `signal ${err.signal}`
            : `exit code ${err.code}`;
        reject(new Error(`${command} failed (${how}):\n${[...errors, ...tail].join('\n')}`));
      },
    );
  });
}

/**
 * Starts a long-running engine as `user` in its own process group (detached), with stdout and
 * stderr appended to `logPath`. No pipe connects it to the agent, so the agent can die or be
 * replaced without the engine noticing. runuser stays the engine's parent: the engine's pid
 * comes from its pid file, not from the returned child.
 */
export function spawnDetached(
  user: string,
  command: string,
  args: string[],
  logPath: string,
  cgroupProcs: string[] = [],
): ChildProcess {
  const log = openSync(logPath, 'a', 0o640);
  try {
    const [exe, ...argv] = inCgroups(cgroupProcs, ['runuser', '-u', user, '--', command, ...args]);
    const child = spawn(exe as string, argv, {
      cwd: '/',
      detached: true,
      stdio: ['ignore', log, log],
      env: engineEnv(),
    });
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

/**
 * The command, made to join the instance's cgroups before it runs: a shell writes its own pid
 * into each cgroup.procs and then execs the command, so the engine and every process it forks
 * start inside the flavor's limits (moving a pid after spawn would miss children forked first).
 */
function inCgroups(cgroupProcs: string[], command: string[]): string[] {
  if (cgroupProcs.length === 0) return command;
  const joins = cgroupProcs.map((_, i) => `echo $$ > "$${i + 1}"`).join(' && ');
  const n = cgroupProcs.length;
  return ['sh', '-c', `${joins} && shift ${n} && exec "$@"`, 'sh', ...cgroupProcs, ...command];
}

/** A fixed, small environment: the agent's own variables (credentials, endpoints) stay with it. */
export function engineEnv(): NodeJS.ProcessEnv {
  return { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', TZ: 'UTC' };
}

/** The first line of a pid file as a pid (postmaster.pid has more lines), or undefined. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` is a live (not zombie) process whose command line contains `identity` (a path
 * only this instance's engine has on its command line), so a reused pid is never mistaken for it.
 */
export async function isEngineProcess(pid: number, identity: string): Promise<boolean> {
  try {
    const [stat, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/cmdline`, 'utf8'),
    ]);
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    // Compared as whole words, so /x/data never matches the engine of /x/data2.
    const words = ` ${cmdline.replaceAll('\0', ' ').trim()} `;
    return state !== 'Z' && state !== 'X' && (identity === '' || words.includes(` ${identity} `));
  } catch {
    return false;
  }
}

/** Live processes whose working directory is `dir` (engines chdir into their data dir). */
export async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if (cwd === dir && (await isEngineProcess(Number(entry), ''))) pids.push(Number(entry));
  }
  return pids;
}

/** Polls `probe` until it returns something other than undefined; bounded by `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  {
    timeoutMs,
    intervalMs = 50,
    abort,
  }: {
    timeoutMs: number;
    /** Between probes: a number, or one by the ms waited so far (a wait that backs off). */
    intervalMs?: number | ((waitedMs: number) => number);
    abort?: () => string | undefined;
  },
): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let lastError = '';
  for (;;) {
    const reason = abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    const value = await probe().catch((err: unknown) => {
      lastError = err instanceof Error ? ` (last error: ${err.message})` : '';
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still not done after ${timeoutMs} ms${lastError}`);
    const pause = typeof intervalMs === 'number' ? intervalMs : intervalMs(Date.now() - started);
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** One step of a stop: send `signal` (again every `repeatMs` if set) and wait up to `waitMs`. */
export interface StopStep {
  signal: NodeJS.Signals;
  waitMs: number;
  repeatMs?: number;
}

/**
 * Stops the engine process `pid` by walking through `steps` (each engine has its own polite
 * signal), then SIGKILL; resolves only once the process is gone, and throws if even SIGKILL
 * does not end it within a few seconds.
 */
export async function stopProcess(pid: number, identity: string, steps: StopStep[]): Promise<void> {
  const gone = async () => ((await isEngineProcess(pid, identity)) ? undefined : true);
  for (const step of [...steps, { signal: 'SIGKILL' as const, waitMs: 5_000 }]) {
    if (await gone()) return;
    signal(pid, step.signal);
    const until = Date.now() + step.waitMs;
    while (Date.now() < until) {
      const slice = Math.min(step.repeatMs ?? step.waitMs, until - Date.now());
      const ended = await waitFor('stop', gone, { timeoutMs: slice }).catch(() => false);
      if (ended) return;
      if (step.repeatMs) signal(pid, step.signal);
    }
  }
  if (!(await gone())) throw new Error(`process ${pid} survived SIGKILL`);
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}
