import { join, resolve } from 'node:path';
import { bundleNodeEntry } from '../agent-bundle.ts';
import { explainExit, howItEnded, type ProcessGroup } from '../processes.ts';
import { type ServiceRun, supervise } from '../supervise.ts';
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

type Options = ComputeHostProcessOptions & { logDir: string; log: (line: string) => void };

/**
 * The compute host (host.ts) in a process of its own (main.ts, bundled as the agent is), started
 * in `procs` so that a crash of the local cloud leaves nothing the next start does not reap. Its
 * log lines come back over the IPC channel to `log`; its own output (a crash's stack) goes to
 * `<logDir>/compute-host.log`.
 *
 * Supervised (../supervise.ts), as Nova's compute service is by systemd: a host that dies while
 * the cloud runs is started again on the same port and state directory, where it adopts the
 * guests it had (they run detached and outlive it, as on a restart of the cloud). Workflow steps
 * that called it in between fail and are retried by their states.
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
  const current = await spawnHost(options.port);
  // A restart keeps the port the first start got (the control plane's endpoint names it).
  const { endpoint } = current;
  const port = Number(new URL(endpoint).port);
  const host = supervise('the compute host', current, () => spawnHost(port), log);
  return {
    endpoint,
    close: (closeOpts = {}) => host.close((run) => run.close(closeOpts)),
  };
}

type HostRun = ComputeHostProcess & ServiceRun;

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
    exited: howItEnded(proc),
    async close({ stopServers = false } = {}) {
      order({ type: 'close', stopServers });
      const timer = new Promise<'timeout'>((r) => setTimeout(r, CLOSE_TIMEOUT_MS, 'timeout').unref());
      if ((await Promise.race([closed.then(() => proc.exited), timer])) === 'timeout')
        log(`compute host: not closed after ${CLOSE_TIMEOUT_MS / 1000} s; the local cloud's stop kills it`);
    },
  };
}
