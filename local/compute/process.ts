import { join } from 'node:path';
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
  const { logDir, log, ...options } = opts;
  const bundle = await bundleNodeEntry(
    join(opts.repoRoot, 'local', 'compute', 'main.ts'),
    join(opts.stateDir, COMPUTE_HOST_MARKER),
  );
  const proc = await procs.start({
    name: 'compute-host',
    command: process.execPath,
    args: [bundle],
    cwd: opts.repoRoot,
    logDir,
    ipc: true,
  });
  const { child } = proc;
  const closed = new Promise<void>((resolve) => {
    child.on('message', (message: FromComputeHost) => {
      if (message.type === 'log') log(message.line);
      else if (message.type === 'closed') resolve();
    });
    child.once('exit', () => resolve());
  });
  const ready = new Promise<string>((resolve, reject) => {
    child.on('message', (message: FromComputeHost) => {
      if (message.type === 'ready') resolve(message.endpoint);
      else if (message.type === 'failed') reject(new Error(`compute host: ${message.message}`));
    });
    child.once('exit', () => reject(new Error('compute host: it exited')));
  });
  const order = (message: ToComputeHost) => {
    if (child.connected) child.send(message);
  };
  order({ type: 'start', options });
  const endpoint = await explainExit(proc, ready);

  return {
    endpoint,
    async close({ stopServers = false } = {}) {
      order({ type: 'close', stopServers });
      const timer = new Promise<'timeout'>((r) => setTimeout(r, CLOSE_TIMEOUT_MS, 'timeout').unref());
      if ((await Promise.race([closed.then(() => proc.exited), timer])) === 'timeout')
        log(`compute host: not closed after ${CLOSE_TIMEOUT_MS / 1000} s; it is killed`);
    },
  };
}
