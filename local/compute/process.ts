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
 * The compute host (host.ts) in a process of its own (main.ts, bundled as the agent is), started
 * in `procs` so that a crash of the local cloud leaves nothing the next start does not reap. Its
 * log lines come back over the IPC channel to `log`; its own output (a crash's stack) goes to
 * `<logDir>/compute-host.log`.
 */
export async function startComputeHostProcess(
  procs: ProcessGroup,
  opts: ComputeHostProcessOptions & { logDir: string; log: (line: string) => void },
): Promise<ComputeHostProcess> {
  const { logDir, log, ...given } = opts;
  // Absolute: the child's working directory is the repository, the caller's may be elsewhere.
  const options = { ...given, stateDir: resolve(given.stateDir), repoRoot: resolve(given.repoRoot) };
  const bundle = await bundleNodeEntry(
    join(options.repoRoot, 'local', 'compute', 'main.ts'),
    join(options.stateDir, COMPUTE_HOST_MARKER),
  );
  const proc = await procs.start({
    name: 'compute-host',
    command: process.execPath,
    args: [bundle],
    cwd: options.repoRoot,
    logDir,
    ipc: true,
  });
  const { child } = proc;
  let closing = false;
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
  // A host that dies while the cloud runs leaves every launch failing: said where it is seen.
  void ready.then(
    () =>
      proc.exited.then((code) => {
        if (!closing)
          log(
            `the compute host exited (${child.signalCode ? `signal ${child.signalCode}` : `exit code ${code}`}): ` +
              `no server can be launched or changed until the local cloud starts again; see ${proc.logPath}`,
          );
      }),
    () => {},
  );
  const order = (message: ToComputeHost) => {
    if (!child.connected) return;
    // A host that died just now: the exit is reported above, the failed write needs no more.
    child.send(message, (err) => {
      if (err) log(`compute host: ${message.type} not delivered: ${err.message}`);
    });
  };
  order({ type: 'start', options });
  const endpoint = await explainExit(proc, ready);

  return {
    endpoint,
    async close({ stopServers = false } = {}) {
      closing = true;
      order({ type: 'close', stopServers });
      const timer = new Promise<'timeout'>((r) => setTimeout(r, CLOSE_TIMEOUT_MS, 'timeout').unref());
      if ((await Promise.race([closed.then(() => proc.exited), timer])) === 'timeout')
        log(`compute host: not closed after ${CLOSE_TIMEOUT_MS / 1000} s; the local cloud's stop kills it`);
    },
  };
}
