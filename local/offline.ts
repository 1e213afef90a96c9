import { createRequire } from 'node:module';
import { type Front, startFront } from './front.ts';
import { freePort } from './ports.ts';
import { howItEnded, type ManagedProcess, type ProcessGroup, untilReady } from './processes.ts';
import { type ServiceRun, supervise } from './supervise.ts';

export interface OfflineOptions {
  stage: string;
  host: string;
  httpPort: number;
  lambdaPort: number;
  /** The WebSocket API's (the guests' doorbell), on which the local cloud's guests connect directly. */
  websocketPort: number;
  env: NodeJS.ProcessEnv;
  cwd: string;
  logDir: string;
  /** serverless-esbuild's work folder, relative to the service. */
  buildDir: string;
  /** The work folder already holds these sources' bundles: serverless-esbuild skips its build. */
  prebuilt: boolean;
  log: (line: string) => void;
}

/**
 * serverless-offline serves the HTTP API and the Lambda Invoke endpoint that the event-source
 * poller and the state-machine runner call. Handlers see the local cloud's endpoints through the
 * environment (--localEnvironment), never through code paths of their own. Clients reach the
 * HTTP API on `httpPort` through the front door (front.ts), which plays API Gateway's part;
 * serverless-offline itself listens on a private port.
 */
export async function startOffline(procs: ProcessGroup, opts: OfflineOptions): Promise<Front> {
  const privatePort = await freePort();
  const url = `http://${opts.host}:${privatePort}`;
  const first = await runOffline(procs, opts, privatePort, opts.prebuilt);
  // Supervised (supervise.ts): every handler runs in this one process (--useInProcess), so one
  // handler's stray exception would otherwise take every function down until the next start, where
  // Lambda would lose one container. Started again on the same ports, with the bundles the first
  // start built; invocations that failed meanwhile are retried by their workflow states and pollers.
  const offline = supervise(
    'serverless-offline',
    first,
    () => runOffline(procs, opts, privatePort, true),
    opts.log,
  );
  const stop = ({ proc }: { proc: ManagedProcess }) => procs.stop(proc);
  const front = await startFront({ host: opts.host, port: opts.httpPort, upstream: new URL(url) }).catch(
    async (err: unknown) => {
      await offline.close(stop);
      throw err;
    },
  );
  return {
    url: front.url,
    async close() {
      await front.close();
      await offline.close(stop);
    },
  };
}

/** serverless-offline started on `privatePort` and answering; a start that fails leaves nothing running. */
async function runOffline(
  procs: ProcessGroup,
  opts: OfflineOptions,
  privatePort: number,
  prebuilt: boolean,
): Promise<ServiceRun & { proc: ManagedProcess }> {
  const cli = createRequire(import.meta.url).resolve('serverless/bin/serverless.js');
  const proc = await procs.start({
    name: 'offline',
    command: process.execPath,
    args: [
      cli,
      'offline',
      'start',
      '--stage',
      opts.stage,
      '--host',
      opts.host,
      '--httpPort',
      String(privatePort),
      '--lambdaPort',
      String(opts.lambdaPort),
      '--websocketPort',
      String(opts.websocketPort),
      '--noPrependStageInUrl',
      '--localEnvironment',
      '--noSponsor',
      // One copy of each handler in this process, as a warm Lambda container holds one, instead of
      // a worker thread (a V8 isolate of ~65 MB that loads the bundle again) for every concurrent
      // call: under the fault and load tests' bursts the workers reached ~100 threads and 6.5 GB,
      // and starting them on a busy 2-core machine took API calls past API Gateway's 29 s (504).
      '--useInProcess',
      // A malformed Cookie header is no reason to refuse a request (API Gateway passes it on).
      '--disableCookieValidation',
    ],
    cwd: opts.cwd,
    env: {
      ...opts.env,
      TROVELESS_BUILD_DIR: opts.buildDir,
      TROVELESS_HANDLERS_PREBUILT: String(prebuilt),
      // serverless-esbuild keeps esbuild's Go process for rebuilds; a soft memory limit makes it
      // hand back what the first build used instead of holding ~160 MB at rest.
      GOMEMLIMIT: '48MiB',
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      FORCE_COLOR: '0',
    },
    logDir: opts.logDir,
  });
  try {
    await untilReady(
      proc,
      'serverless-offline',
      async () => {
        const res = await fetch(`http://${opts.host}:${privatePort}/`);
        return res.status === 200 ? true : undefined;
      },
      {
        // Includes bundling the handlers when no earlier build fits (handler-cache.ts): about 20 s
        // on a quiet 2-core machine, past 90 s on a busy one.
        timeoutMs: 240_000,
      },
    );
  } catch (err) {
    await procs.stop(proc);
    throw err;
  }
  return { proc, logPath: proc.logPath, exited: howItEnded(proc) };
}
