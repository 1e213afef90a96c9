import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { allInOrder } from '../lib/settled.ts';
import { bundleAgent, localImageOf } from './agent-bundle.ts';
import { computeHostSecret, stopComputeLeftovers } from './compute/host.ts';
import { COMPUTE_HOST_MARKER, startComputeHostProcess } from './compute/process.ts';
import { localCredentials, startSupervisedDynamoDb } from './dynamodb.ts';
import { guestKeySecret } from './guest-key-secret.ts';
import { handlerBuild } from './handler-cache.ts';
import { seedIdentity } from './identity-seed.ts';
import { intrinsicResolver } from './intrinsics.ts';
import { lambdaInvoker } from './lambda.ts';
import { startOffline } from './offline.ts';
import { requireFreePorts } from './port-check.ts';
import { checkPrerequisites } from './prerequisites.ts';
import { ProcessGroup, reapLeftovers } from './processes.ts';
import {
  createBuckets,
  createQueues,
  createTables,
  type QueueInfo,
  referencedLogicalId,
} from './provision.ts';
import { s3Client, startS3 } from './s3.ts';
import { type ResolvedService, resolveService, type SqsEventConfig } from './service.ts';
import { startSqs } from './sqs.ts';
import { SqsEventSource } from './sqs-event-source.ts';
import { startStepFunctionsServer } from './stepfunctions/server.ts';
import { localCertificateAuthority } from './tls-ca.ts';

export interface LocalCloudPorts {
  api: number;
  lambda: number;
  dynamodb: number;
  sqs: number;
  s3: number;
  stepfunctions: number;
  compute: number;
  /** The guests' doorbell: serverless-offline's WebSocket API (lib/guest/doorbell.ts). */
  doorbell: number;
}

export interface LocalCloudOptions {
  root: string;
  stateDir: string;
  stage: string;
  host: string;
  ports: LocalCloudPorts;
  /** Use these instead of starting the embedded servers (e.g. ElasticMQ, or real AWS). */
  external?: { sqs?: string; dynamodb?: string; s3?: string };
  wipe?: boolean;
  /** Extra environment for the functions and guest agents (e.g. shortened timeouts in tests). */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface LocalCloud {
  endpoints: Record<
    'api' | 'identity' | 'lambda' | 'dynamodb' | 'sqs' | 's3' | 'stepfunctions' | 'compute',
    string
  >;
  /** The environment a process needs to talk to this cloud as the functions do. */
  env: Record<string, string>;
  tables: string[];
  queues: QueueInfo[];
  buckets: string[];
  stateMachines: string[];
  /** The guest image's id (the agent bundle's), which `instance rebuild` takes. */
  guestImage: string;
  stop(): Promise<void>;
}

/** What the pid file's processes run, by which a later start (or a test's teardown) knows them as ours. */
export const LEFTOVER_MARKERS = ['DynamoDBLocal.jar', 's3rver', 'serverless.js offline', COMPUTE_HOST_MARKER];
/** Poll loops per SQS event source, as the five pollers Lambda starts an SQS event source with. */
export const EVENT_SOURCE_POLLERS = 5;

export async function startLocalCloud(opts: LocalCloudOptions): Promise<LocalCloud> {
  const log = opts.log ?? (() => {});
  const region = 'us-east-1';
  const pidFile = join(opts.stateDir, 'pids.json');
  await mkdir(opts.stateDir, { recursive: true });
  // A run still alive holds the API port in its own process (the front door): refuse before the
  // reaping below, which would stop that run's DynamoDB, s3rver and serverless-offline.
  await requireFreePorts(opts.host, { api: opts.ports.api });
  const reaped = await reapLeftovers(pidFile, LEFTOVER_MARKERS);
  if (reaped.length) log(`stopped processes left by an earlier run: ${reaped.join(', ')}`);
  if (opts.wipe) {
    // Records of guests still running would be lost with the state dir: stop them first.
    await stopComputeLeftovers({ stateDir: opts.stateDir, repoRoot: opts.root, log });
    await rm(opts.stateDir, { recursive: true, force: true });
    await mkdir(opts.stateDir, { recursive: true });
    log(`wiped ${opts.stateDir}`);
  }
  await checkPrerequisites({ java: !opts.external?.dynamodb });
  // After the reaping above: ports a crashed run held are free again; a live run's are not.
  const { dynamodb, s3, sqs, ...always } = opts.ports;
  await requireFreePorts(opts.host, {
    ...always,
    ...(opts.external?.dynamodb ? {} : { dynamodb }),
    ...(opts.external?.s3 ? {} : { s3 }),
    ...(opts.external?.sqs ? {} : { sqs }),
  });

  const logDir = join(opts.stateDir, 'logs');
  // Handlers are bundled inside the repository whatever the state dir, so that the AWS SDK, which
  // the bundles leave to the Lambda runtime, resolves from node_modules; a start with the same
  // sources as an earlier one reuses its bundles (handler-cache.ts).
  const handlers = await handlerBuild(opts.root, {
    id: createHash('sha1').update(resolve(opts.stateDir)).digest('hex').slice(0, 12),
    watch: (opts.env?.TROVELESS_WATCH ?? process.env.TROVELESS_WATCH) === 'true',
  });
  const procs = new ProcessGroup(pidFile);
  const closers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    await procs.stopAll();
    await handlers.release();
  };

  try {
    // Settled, all of them, before a failure stops the cloud: a service still starting when stop()
    // ran would push its closer too late and be left running (and, supervised, started again).
    const [service, dynamodb, s3, sqs] = await allInOrder([
      resolveService(opts.stage, opts.root, opts.env),
      opts.external?.dynamodb ??
        startSupervisedDynamoDb(
          procs,
          { port: opts.ports.dynamodb, dataDir: join(opts.stateDir, 'dynamodb'), logDir },
          (line) => log(`[dynamodb] ${line}`),
        ).then((db) => {
          closers.push(db.close);
          return db.endpoint;
        }),
      opts.external?.s3 ??
        startS3(procs, { port: opts.ports.s3, dataDir: join(opts.stateDir, 's3'), logDir }).then((s3) => {
          closers.push(s3.close);
          return s3.endpoint;
        }),
      opts.external?.sqs ??
        startSqs({
          port: opts.ports.sqs,
          dataDir: join(opts.stateDir, 'sqs'),
          log: (line) => log(`[sqs] ${line}`),
          // The e2e cloud sends every guest order twice (test/e2e/global-setup.ts).
          duplicate:
            (opts.env?.TROVELESS_CHAOS_DUPLICATE_MESSAGES ??
              process.env.TROVELESS_CHAOS_DUPLICATE_MESSAGES) === 'true'
              ? (name) => name.startsWith(`troveless-${opts.stage}-guest-`)
              : undefined,
        }).then((server) => {
          closers.push(server.close);
          log(`[sqs] restored ${server.restored.queues} queues, ${server.restored.messages} messages`);
          return server.endpoint;
        }),
    ]);
    const stepfunctions = `http://${opts.host}:${opts.ports.stepfunctions}`;
    const lambda = `http://${opts.host}:${opts.ports.lambda}`;
    const api = `http://${opts.host}:${opts.ports.api}`;
    const compute = `http://${opts.host}:${opts.ports.compute}`;
    const env: Record<string, string> = {
      ...cloudEnvironment(
        { dynamodb, sqs, s3, stepfunctions, lambda, region },
        await tokenSecret(opts.stateDir),
      ),
      TROVELESS_COMPUTE_ENDPOINT: compute,
      TROVELESS_DOORBELL_URL: `ws://${opts.host}:${opts.ports.doorbell}`,
      // The compute host answers only callers with its secret (its state dir, 0600).
      TROVELESS_COMPUTE_SECRET: await computeHostSecret(opts.stateDir),
      TROVELESS_GUEST_KEK: await guestKeySecret(opts.stateDir),
      // The instance CA's file (0600): the certificate-issuing step reads it, guests never do.
      TROVELESS_CA_FILE: await localCertificateAuthority(opts.stateDir),
      ...opts.env,
    };
    // Guests reach the same emulators; the token secret and guest KEK stay with the control plane.
    const {
      TROVELESS_TOKEN_SECRET: _secret,
      TROVELESS_GUEST_KEK: _kek,
      TROVELESS_CA_FILE: _ca,
      ...agentEnv
    } = env;
    // Self-contained (no node_modules needed), so it may live with the state wherever that is.
    const agent = await bundleAgent(opts.root, opts.stateDir);
    // The bundle is the local cloud's guest image: what an admin's rebuild installs on a server.
    const guestImage = await localImageOf(agent);
    // In a process of its own: the forks of every launch no longer stall this one's event loop.
    const computeHost = await startComputeHostProcess(procs, {
      port: opts.ports.compute,
      host: opts.host,
      stateDir: opts.stateDir,
      repoRoot: opts.root,
      agentEnv,
      image: guestImage,
      logDir,
      log: (line) => log(`[compute] ${line}`),
    });
    closers.push(() => computeHost.close({ stopServers: true }));

    const ddbClient = new DynamoDBClient({ endpoint: dynamodb, region, credentials: localCredentials });
    const sqsClient = new SQSClient({ endpoint: sqs, region, credentials: localCredentials });
    const [tables, queues, buckets] = await Promise.all([
      createTables(ddbClient, service),
      createQueues(sqsClient, service),
      createBuckets(s3Client(s3), service),
    ]);
    log(`tables: ${tables.join(', ')}`);
    log(`identity: seeded ${(await seedIdentity(ddbClient, service)).join(', ')} (local stage only)`);
    log(`queues: ${[...queues.values()].map((q) => q.name).join(', ')}`);

    const front = await startOffline(procs, {
      stage: opts.stage,
      host: opts.host,
      httpPort: opts.ports.api,
      lambdaPort: opts.ports.lambda,
      websocketPort: opts.ports.doorbell,
      env: { ...process.env, ...env },
      cwd: opts.root,
      logDir,
      buildDir: relative(opts.root, handlers.dir),
      prebuilt: handlers.prebuilt,
      log: (line) => log(`[offline] ${line}`),
    });
    closers.push(front.close);
    await handlers.seal();
    log(
      `handlers: ${handlers.prebuilt ? 'unchanged since an earlier start, reused' : 'built'} (${relative(opts.root, handlers.dir)})`,
    );
    const invoke = lambdaInvoker(lambda);
    // The catalog (datastores, versions, flavors) is seeded at every start, as on every deploy.
    const seed = service.functions.catalogSeed;
    if (seed) log(`catalog: ${JSON.stringify(await invoke(seed.name, {}))}`);

    const resolve = intrinsicResolver(service, queues, region);
    const machines = Object.entries(service.stepFunctions?.stateMachines ?? {}).map(([key, m]) => ({
      name: m.name ?? key,
      definition: resolve(m.definition) as Record<string, unknown>,
    }));
    const sfn = await startStepFunctionsServer({
      port: opts.ports.stepfunctions,
      host: opts.host,
      region,
      stateMachines: machines,
      invokeFunction: invoke,
      stateDir: join(opts.stateDir, 'stepfunctions'),
      log: (line) => log(`[states] ${line}`),
    });
    closers.push(sfn.close);

    for (const source of eventSources(service, queues)) {
      const poller = new SqsEventSource({
        sqs: sqsClient,
        queueUrl: source.queue.url,
        queueArn: source.queue.arn,
        functionName: source.functionName,
        batchSize: source.config.batchSize,
        maximumBatchingWindowSeconds: source.config.maximumBatchingWindow,
        reportBatchItemFailures: source.config.functionResponseType === 'ReportBatchItemFailures',
        concurrency: EVENT_SOURCE_POLLERS,
        region,
        invoke,
        log: (line) => log(`[sqs ${source.queue.name}] ${line}`),
      });
      poller.start();
      closers.push(() => poller.stop());
    }

    return {
      endpoints: { api, identity: `${api}/v3`, lambda, dynamodb, sqs, s3, stepfunctions, compute },
      env,
      tables,
      queues: [...queues.values()],
      buckets,
      stateMachines: machines.map((m) => m.name),
      guestImage: guestImage.id,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The SDK's own service-specific endpoint variables: production code needs no local branch. */
function cloudEnvironment(
  e: { dynamodb: string; sqs: string; s3: string; stepfunctions: string; lambda: string; region: string },
  secret: string,
): Record<string, string> {
  const hasCredentials = Boolean(process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY);
  return {
    AWS_REGION: process.env.AWS_REGION ?? e.region,
    ...(hasCredentials
      ? {}
      : {
          AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
        }),
    AWS_ENDPOINT_URL_DYNAMODB: e.dynamodb,
    AWS_ENDPOINT_URL_SQS: e.sqs,
    AWS_ENDPOINT_URL_S3: e.s3,
    AWS_ENDPOINT_URL_SFN: e.stepfunctions,
    AWS_ENDPOINT_URL_LAMBDA: e.lambda,
    // s3rver needs path-style addressing and no streamed checksums (LOCAL_STACK.md).
    TROVELESS_S3_FORCE_PATH_STYLE: 'true',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    TROVELESS_TOKEN_SECRET: secret,
  };
}

/** A per-installation signing secret, created once and kept (0600) with the rest of the state. */
async function tokenSecret(stateDir: string): Promise<string> {
  if (process.env.TROVELESS_TOKEN_SECRET) return process.env.TROVELESS_TOKEN_SECRET;
  const file = join(stateDir, 'token-secret');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}

function eventSources(service: ResolvedService, queues: Map<string, QueueInfo>) {
  const out: Array<{ functionName: string; queue: QueueInfo; config: SqsEventConfig }> = [];
  for (const fn of Object.values(service.functions)) {
    for (const event of fn.events ?? []) {
      if (!event.sqs) continue;
      const config: SqsEventConfig = typeof event.sqs === 'string' ? { arn: event.sqs } : event.sqs;
      if (config.enabled === false) continue;
      const queue = findQueue(config.arn, queues);
      if (!queue)
        throw new Error(`${fn.name}: its SQS event names a queue that serverless.yml does not define`);
      out.push({ functionName: fn.name, queue, config });
    }
  }
  return out;
}

function findQueue(arn: unknown, queues: Map<string, QueueInfo>): QueueInfo | undefined {
  const id = referencedLogicalId(arn);
  if (id) return queues.get(id);
  return [...queues.values()].find(
    (q) => q.arn === arn || (typeof arn === 'string' && arn.endsWith(`:${q.name}`)),
  );
}
