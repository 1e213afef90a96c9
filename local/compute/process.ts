import { join, resolve } from 'node:path';
import { bundleNodeEntry } from '../agent-bundle.ts';
import { explainExit, type ProcessGroup } from '../processes.ts';
import type { ComputeHostProcessOptions, FromComputeHost, ToComputeHost } from './main.ts';

/** What the local cloud's pid file names it by, so that a later start reaps one a crash left. */
export const COMPUTE_HOST_MARKER = join('compute-host', 'main.mjs');

/** How long a close may take: stopping every guest is bounded at ~25 s each, in parallel. */
const CLOSE_TIMEOUT_MS = 90_000;

export interface ComputeHostProcess {
  endpoint: string;
  /** `stopServers` also stops every guest's agent and engine (data and records stay). */
  close(opts?: { stopServers?: boolean }): Promise<void>;
}

/**
 * The wait before starting the host again, by how many times in a row it died soon after it was
 * up (a crash loop backs off, as systemd's and Kubernetes' restarts do); a run this long resets it.
 */
const RESTART_DELAYS_MS = [0, 1_000, 2_000, 5_000, 10_000];
const STABLE_AFTER_MS = 10_000;
/** Starts in a row that never became ready: then it stays down, and says so. */
const MAX_FAILED_STARTS = 5;

type Options = ComputeHostProcessOptions & { logDir: string; log: (line: string) => void };

/**
 * The compute host (host.ts) in a process of its own (main.ts, bundled as the agent is), started
 * in `procs` so that a crash of the local cloud leaves nothing the next start does not reap. Its
 * log lines come back over the IPC channel to `log`; its own output (a crash's stack) goes to
 * `<logDir>/compute-host.log`.
 *
 * Supervised, as Nova's compute service is by systemd: a host that dies while the cloud runs is
 * started again on the same port and state directory, where it adopts the guests it had (they
 * run detached and outlive it, as on a restart of the cloud). Workflow steps that called it in
 * between fail and are retried by their states. A host that keeps dying soon after its start is
 * started again less and less often; one that fails to start five times in a row stays down, and
 * says so.
 */
export async function startComputeHostProcess(
  procs: ProcessGroup,
  opts: Options,
): Promise<ComputeHostProcess> {
  const { logDir, log, ...given } = opts;
  // Absolute: the child's working directory is the repository, the caller's may be elsewhere.
  const options = { ...given, stateDir: resolve(given.stateDir), repoRoot: resolve(given.repoRoot) };
  const bundle = await bundleNodeEntry(
    join(options.repoRoot, 'local', 'compute', 'main.ts'),
    join(options.stateDir, COMPUTE_HOST_MARKER),
  );
  const spawnHost = (port: number) => startOnce(procs, { ...options, port }, { bundle, logDir, log });
  let current = await spawnHost(options.port);
  // A restart keeps the port the first start got (the control plane's endpoint names it).
  const { endpoint } = current;
  const port = Number(new URL(endpoint).port);
  let closing: { stopServers?: boolean } | undefined;
  let wake: (() => void) | undefined;
  const supervised = (async () => {
    let quickExits = 0;
    for (;;) {
      const upSince = Date.now();
      const how = await current.exited;
      if (closing) return;
      quickExits = Date.now() - upSince < STABLE_AFTER_MS ? quickExits + 1 : 0;
      log(
        `the compute host exited (${how}) while the cloud runs; see ${current.logPath}. ` +
          'Starting it again: it adopts the guests it had.',
      );
      for (let failedStarts = 0; ; ) {
        const backoff = Math.max(0, quickExits - 1) + failedStarts;
        const delay = RESTART_DELAYS_MS[Math.min(backoff, RESTART_DELAYS_MS.length - 1)];
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, delay).unref();
        });
        if (closing) return;
        try {
          current = await spawnHost(port);
          // Closed while it started: it goes the way the close asked.
          if (closing) return await current.close(closing);
          log(`the compute host is back on ${current.endpoint}`);
          break;
        } catch (err) {
          log(`the compute host did not start again: ${err instanceof Error ? err.message : String(err)}`);
          if (++failedStarts >= MAX_FAILED_STARTS) {
            log(
              `the compute host did not start in ${failedStarts} attempts: no server can be launched ` +
                'or changed until the local cloud starts again',
            );
            return;
          }
        }
      }
    }
  })();
  return {
    endpoint,
    async close(closeOpts = {}) {
      closing = closeOpts;
      wake?.();
      await current.close(closeOpts);
      await supervised;
    },
  };
}

interface HostRun extends ComputeHostProcess {
  /** Settles with how it ended (an exit code or a signal) once the process has exited. */
  exited: Promise<string>;
  logPath: string;
}

/** One run of the host process: started, ready on its endpoint, or failed with its log's end. */
async function startOnce(
  procs: ProcessGroup,
  options: ComputeHostProcessOptions,
  { bundle, logDir, log }: { bundle: string; logDir: string; log: (line: string) => void },
): Promise<HostRun> {
  const proc = await procs.start({
    name: 'compute-host',
    command: process.execPath,
    args: [bundle],
    cwd: options.repoRoot,
    logDir,
    ipc: true,
  });
  const { child } = proc;
  const closed = new Promise<void>((resolve) => {
    child.on('message', (message: FromComputeHost) => {
      if (message.type === 'log') log(message.line);
      else if (message.type === 'closed') resolve();
    });
    void proc.exited.then(() => resolve());
  });
  // proc.exited is there from the spawn on (and settles on a spawn error too): no exit is missed.
  const ready = new Promise<string>((resolve, reject) => {
    child.on('message', (message: FromComputeHost) => {
      if (message.type === 'ready') resolve(message.endpoint);
      else if (message.type === 'failed') reject(new Error(`compute host: ${message.message}`));
    });
    void proc.exited.then(() => reject(new Error('compute host: it exited')));
  });
  const order = (message: ToComputeHost) => {
    if (!child.connected) return;
    // A host that died just now: its exit is seen by the supervisor, the failed write needs no more.
    child.send(message, (err) => {
      if (err) log(`compute host: ${message.type} not delivered: ${err.message}`);
    });
  };
  order({ type: 'start', options });
  const endpoint = await explainExit(proc, ready);

  return {
    endpoint,
    logPath: proc.logPath,
    exited: proc.exited.then((code) =>
      child.signalCode ? `signal ${child.signalCode}` : `exit code ${code}`,
    ),
    async close({ stopServers = false } = {}) {
      order({ type: 'close', stopServers });
      const timer = new Promise<'timeout'>((r) => setTimeout(r, CLOSE_TIMEOUT_MS, 'timeout').unref());
      if ((await Promise.race([closed.then(() => proc.exited), timer])) === 'timeout')
        log(`compute host: not closed after ${CLOSE_TIMEOUT_MS / 1000} s; the local cloud's stop kills it`);
    },
  };
}
