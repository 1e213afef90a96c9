// The local compute host as a process of its own, as Nova compute runs beside the API rather than
// in it (local/compute/process.ts starts it, bundled). Every launch forks a dozen children (useradd,
// mkfs, mount, nft, the agent) and each fork holds the forking process's event loop for as long as
// it takes to copy its page tables: 7-15 ms from the ~250 MB local cloud, which stalled the SQS
// server, the workflows and the front door that share its loop. From a small process of its own,
// those forks are short and hold up nobody else.
//
// Its orders come over the IPC channel the local cloud opened: the options first (they hold the
// agents' credentials, so never in the command line), then `close`. The channel closing without
// a `close` means the local cloud died: the host goes too, its guests stay (as when it ran
// in-process and the cloud was killed), for the next start to adopt.

import type { LocalImage } from './guests.ts';
import { type ComputeHost, type ComputeHostOptions, startComputeHost } from './host.ts';

export interface ComputeHostProcessOptions {
  port: number;
  host: string;
  stateDir: string;
  repoRoot: string;
  agentEnv: Record<string, string>;
  image: LocalImage;
}

export type ToComputeHost =
  | { type: 'start'; options: ComputeHostProcessOptions }
  | { type: 'close'; stopServers: boolean };
export type FromComputeHost =
  | { type: 'log'; line: string }
  | { type: 'ready'; endpoint: string }
  | { type: 'failed'; message: string }
  | { type: 'closed' };

const send = (message: FromComputeHost) =>
  new Promise<void>((resolve) => {
    // Once the local cloud is gone there is nobody to tell.
    if (!process.connected) return resolve();
    process.send?.(message, undefined, {}, () => resolve());
  });

if (!process.send) {
  console.error('the compute host process is started by the local cloud (local/compute/process.ts)');
  process.exit(2);
}

let starting: Promise<ComputeHost | undefined> | undefined;
let closing: Promise<void> | undefined;

function close(stopServers: boolean): Promise<void> {
  closing ??= (async () => {
    // A close during the start waits for it: the guests it adopted are stopped too.
    const host = await starting;
    let code = 0;
    try {
      await host?.close({ stopServers });
    } catch (err) {
      // Said (some guests did not stop), and the close still ends: the next start adopts them.
      code = 1;
      await send({ type: 'log', line: `closing: ${err instanceof Error ? err.message : String(err)}` });
    }
    await send({ type: 'closed' });
    // Closed already when the local cloud died; disconnecting again would throw.
    if (process.connected) process.disconnect();
    process.exit(code);
  })();
  return closing;
}

process.on('message', (message: ToComputeHost) => {
  if (message.type === 'close') void close(message.stopServers);
  else if (message.type === 'start') starting ??= start(message.options);
});
process.on('disconnect', () => void close(false));

async function start(o: ComputeHostProcessOptions): Promise<ComputeHost | undefined> {
  const options: ComputeHostOptions = {
    ...o,
    // A launched server runs the image's bundle; a rebuilt one the copy on its own root.
    // No --enable-source-maps: it parses every map at start (local/agent-bundle.ts).
    agentCommand: (configPath, bundle = o.image.bundle) => ({
      command: process.execPath,
      args: [bundle, configPath],
    }),
    log: (line) => void send({ type: 'log', line }),
  };
  try {
    const host = await startComputeHost(options);
    await send({ type: 'ready', endpoint: host.endpoint });
    return host;
  } catch (err) {
    await send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
}
