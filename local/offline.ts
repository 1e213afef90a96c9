import { createRequire } from 'node:module';
import { type Front, startFront } from './front.ts';
import { freePort } from './ports.ts';
import { type ProcessGroup, untilReady } from './processes.ts';

export interface OfflineOptions {
  stage: string;
  host: string;
  httpPort: number;
  lambdaPort: number;
  env: NodeJS.ProcessEnv;
  cwd: string;
  logDir: string;
  /** serverless-esbuild's work folder, relative to the service. */
  buildDir: string;
  /** The work folder already holds these sources' bundles: serverless-esbuild skips its build. */
  prebuilt: boolean;
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
      TROVELESS_HANDLERS_PREBUILT: String(opts.prebuilt),
      // serverless-esbuild keeps esbuild's Go process for rebuilds; a soft memory limit makes it
      // hand back what the first build used instead of holding ~160 MB at rest.
      GOMEMLIMIT: '48MiB',
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      FORCE_COLOR: '0',
    },
    logDir: opts.logDir,
  });
  const url = `http://${opts.host}:${privatePort}`;
  await untilReady(
    proc,
    'serverless-offline',
    async () => {
      const res = await fetch(`${url}/`);
      return res.status === 200 ? true : undefined;
    },
    {
      // Includes bundling the handlers when no earlier build fits (handler-cache.ts): about 20 s
      // on a quiet 2-core machine, past 90 s on a busy one.
      timeoutMs: 240_000,
    },
  );
  return startFront({ host: opts.host, port: opts.httpPort, upstream: new URL(url) });
}
