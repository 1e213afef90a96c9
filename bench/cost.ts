// `npm run bench -- cost [--rest <seconds>]`: what one instance costs the control plane in AWS
// requests, measured on the local cloud, priced at bench/prices.ts.
//
// DynamoDB Local, the SQS server and s3rver run behind counting proxies (bench/meter.ts): every
// request a handler, a workflow step, the event source or a guest sends is counted where it
// arrives, DynamoDB with the capacity units it reports. Lambda invocations and their billed
// durations come from serverless-offline's log, Step Functions state transitions from the
// executions' histories. One redis instance (the quickest engine; the control plane's requests
// do not depend on the engine) is created, left at rest with 60 s heartbeats for a few minutes
// (the counts are extrapolated to an hour and a month: said so in the output), backed up,
// restarted and deleted. The bench's own probes read the services directly, past the proxies.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { PART_BYTES } from '../agent/backup/multipart.ts';
import { KEEPALIVE_MS } from '../agent/doorbell.ts';
import { config } from '../lib/config.ts';
import { agentLogPath } from '../local/compute/records.ts';
import { localCredentials, startDynamoDb } from '../local/dynamodb.ts';
import { freePort } from '../local/ports.ts';
import { ProcessGroup } from '../local/processes.ts';
import { startS3 } from '../local/s3.ts';
import { createDurableSqs } from '../local/sqs-durable.ts';
import {
  type BenchCloud,
  Cleanup,
  call,
  documentClient,
  fixed,
  INSTANCES_TABLE,
  load,
  login,
  row,
  sleep,
  startBenchCloud,
} from './cloud.ts';
import { AS_BUILT, alternatives, type RestCounts, restCost, restTotal } from './cost-model.ts';
import { type Counts, cloneCounts, diffCounts, emptyCounts, type Meter, startMeter, total } from './meter.ts';
import { HOURS_PER_MONTH, PRICES } from './prices.ts';

const DEFAULT_REST_SECONDS = 240;
/** The setting for the at-rest goal. */
const HEARTBEAT_SECONDS = 60;
const GOAL_PER_INSTANCE_MONTH = 0.05;
const OP_TIMEOUT_MS = 180_000;
/** serverless.yml's provider memorySize: no function overrides it. */
const FUNCTION_GB = 256 / 1024;
/** START, END and REPORT lines of one invocation in CloudWatch Logs, with their framing (estimate). */
const LOG_BYTES_PER_INVOCATION = 350;
/** Guest long-poll (agent/guest.ts): SQS's longest. */
const GUEST_WAIT_SECONDS = 20;
/** API Gateway closes a WebSocket connection after 2 h: the guest opens its doorbell again. */
const DOORBELL_RECONNECTS_PER_HOUR = 0.5;
/** What the agent logs when it rests on its doorbell (agent/guest.ts). */
const AT_REST_LINE = 'at rest: the queue is polled when the doorbell rings';
/** The conductor's key cache TTL (lib/conductor/guests.ts): one KMS Decrypt per guest per TTL per warm container. */
const KEY_CACHE_TTL_MINUTES = 60;
/** The scheduled scans that read every instance item: sync-servers each minute, backup scheduler each 5. */
const SCANS_PER_HOUR = 60 + 12;
/** Lambda's SQS event source: five pollers from the start, each long-polling 20 s when idle. */
const ESM_POLLERS = 5;

interface Lambdas {
  /** function → invocations and billed ms. */
  byFunction: Map<string, { n: number; billedMs: number }>;
}

interface Window {
  name: string;
  seconds: number;
  counts: Counts;
  lambdas: Lambdas;
  transitions: number;
  executions: number;
}

// ---- what was counted ----

async function lambdaLines(stateDir: string): Promise<{ fn: string; billedMs: number }[]> {
  const log = await readFile(join(stateDir, 'logs', 'offline.log'), 'utf8').catch(() => '');
  return [
    ...log.matchAll(/\(λ: (\S+)\) RequestId: \S+ {2}Duration: [\d.]+ ms {2}Billed Duration: (\d+) ms/g),
  ].map((m) => ({ fn: String(m[1]), billedMs: Number(m[2]) }));
}

function lambdasBetween(all: { fn: string; billedMs: number }[], from: number, to: number): Lambdas {
  const byFunction = new Map<string, { n: number; billedMs: number }>();
  for (const { fn, billedMs } of all.slice(from, to)) {
    const f = byFunction.get(fn) ?? { n: 0, billedMs: 0 };
    f.n++;
    f.billedMs += billedMs;
    byFunction.set(fn, f);
  }
  return { byFunction };
}

const invocations = (l: Lambdas, fn?: string) =>
  [...l.byFunction].filter(([k]) => !fn || k === fn).reduce((s, [, v]) => s + v.n, 0);
const billedMs = (l: Lambdas, fn?: string) =>
  [...l.byFunction].filter(([k]) => !fn || k === fn).reduce((s, [, v]) => s + v.billedMs, 0);

/** State transitions (states entered) of the executions started in [from, to). */
async function transitionsBetween(sfn: SFNClient, from: Date, to: Date) {
  let transitions = 0;
  let executions = 0;
  const machines = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? [];
  for (const m of machines) {
    const list = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: m.stateMachineArn, maxResults: 1000 }),
    );
    for (const e of list.executions ?? []) {
      if (!e.startDate || e.startDate < from || e.startDate >= to) continue;
      executions++;
      const history = await sfn.send(
        new GetExecutionHistoryCommand({ executionArn: e.executionArn, maxResults: 1000 }),
      );
      transitions += (history.events ?? []).filter((ev) => ev.type?.endsWith('StateEntered')).length;
    }
  }
  return { transitions, executions };
}

// ---- prices ----

interface Priced {
  sqs: number;
  lambda: number;
  dynamo: number;
  sfn: number;
  s3: number;
  kms: number;
  api: number;
  logs: number;
}

const sum = (p: Priced) => Object.values(p).reduce((a, b) => a + b, 0);

/** The AWS price of what a window counted (S3 storage and KMS modelled: see notes). */
function priceWindow(w: Window, extra: { apiRequests: number; kmsRequests: number }): Priced {
  const c = w.counts;
  const inv = invocations(w.lambdas);
  return {
    sqs: total(c, 'sqs ') * PRICES.sqsRequest,
    lambda: inv * PRICES.lambdaRequest + (billedMs(w.lambdas) / 1000) * FUNCTION_GB * PRICES.lambdaGbSecond,
    dynamo: (c.writeUnits + c.refusedWrites) * PRICES.dynamoWriteUnit + c.readUnits * PRICES.dynamoReadUnit,
    sfn: w.transitions * PRICES.sfnTransition,
    s3:
      total(c, 's3 ', (k) => !/Get|Head|Delete$|Abort/.test(k)) * PRICES.s3Tier1Request +
      total(c, 's3 ', (k) => /GetObject|Head/.test(k)) * PRICES.s3Tier2Request,
    kms: extra.kmsRequests * PRICES.kmsRequest,
    api: extra.apiRequests * PRICES.httpApiRequest,
    logs: ((inv * LOG_BYTES_PER_INVOCATION) / 1e9) * PRICES.logsGb,
  };
}

const usd = (x: number, digits = 5) => `$${x.toFixed(digits)}`;

// ---- main ----

export async function run(args: string[]): Promise<number> {
  const restArg = args.indexOf('--rest');
  const restSeconds = restArg >= 0 ? Number(args[restArg + 1]) : DEFAULT_REST_SECONDS;
  if (!(restSeconds >= 60)) {
    console.error('--rest takes a number of seconds, at least 60');
    return 2;
  }
  const cleanup = new Cleanup();
  const meters: Meter[] = [];
  const closers: Array<() => Promise<void>> = [];
  let bench: BenchCloud | undefined;
  let ok = true;
  console.log(
    `bench cost: one redis instance, created, at rest for ${restSeconds} s with ${HEARTBEAT_SECONDS} s heartbeats, ` +
      `backed up, restarted, deleted; prices: ${PRICES.region}, read ${PRICES.read}`,
  );
  try {
    // The services the cloud would start itself, started here so that counting proxies stand in front.
    const svcDir = await cleanup.tempDir('troveless-bench-costsvc-');
    const pidFile = join(svcDir, 'pids.json');
    const procs = new ProcessGroup(pidFile);
    closers.push(() => procs.stopAll());
    const [dynamoBackend, s3] = await Promise.all([
      startDynamoDb(procs, { port: await freePort(), dataDir: join(svcDir, 'dynamodb'), logDir: svcDir }),
      startS3(procs, { port: await freePort(), dataDir: join(svcDir, 's3'), logDir: svcDir }),
    ]);
    cleanup.tracked.rememberPidFile(pidFile);
    closers.push(s3.close);
    // The SQS server in this process. Its queue URLs must name the proxy: the SDK sends a request
    // to its QueueUrl's host when no endpoint is configured in code (the functions and guests
    // configure theirs through AWS_ENDPOINT_URL_SQS).
    const sqs = createDurableSqs({
      port: 0,
      hostname: '127.0.0.1',
      emulateQueueCreationLifecycle: false,
      dataDir: join(svcDir, 'sqs'),
    });
    const sqsServer = createServer((req, res) => void sqs.requestHandler(req, res));
    await new Promise<void>((resolve) => sqsServer.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          sqsServer.closeAllConnections();
          sqsServer.close(() => {
            sqs.close();
            resolve();
          });
        }),
    );
    const sqsBackend = `http://127.0.0.1:${(sqsServer.address() as AddressInfo).port}`;
    const counts = emptyCounts();
    for (const [kind, target] of [
      ['dynamodb', dynamoBackend],
      ['sqs', sqsBackend],
      ['s3', s3.endpoint],
    ] as const)
      meters.push(await startMeter(kind, target, counts));
    const [dynamoMeter, sqsMeter, s3Meter] = meters as [Meter, Meter, Meter];
    sqs.service.PORT = Number(new URL(sqsMeter.endpoint).port);

    bench = await startBenchCloud(
      cleanup,
      'cost',
      { TROVELESS_REPORT_INTERVAL: String(HEARTBEAT_SECONDS) },
      { dynamodb: dynamoMeter.endpoint, sqs: sqsMeter.endpoint, s3: s3Meter.endpoint },
    );
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    const { api, stateDir } = bench;
    const admin = await login(api, 'admin', 'admin');
    // The bench's own probes, past the proxies.
    const direct = documentClient(
      new DynamoDBClient({ endpoint: dynamoBackend, region: 'us-east-1', credentials: localCredentials }),
    );
    const sfn = new SFNClient({
      endpoint: bench.cloud.endpoints.stepfunctions,
      region: 'us-east-1',
      credentials: localCredentials,
    });
    const base = `/v1.0/${admin.projectId}`;
    const instanceItem = async (id: string) =>
      (
        await direct.send(
          new GetCommand({ TableName: INSTANCES_TABLE, Key: { project_id: admin.projectId, id } }),
        )
      ).Item;
    const until = async (what: string, probe: () => Promise<boolean>) => {
      const deadline = Date.now() + OP_TIMEOUT_MS;
      while (!(await probe())) {
        if (Date.now() > deadline) throw new Error(`${what}: not within ${OP_TIMEOUT_MS / 1000} s`);
        await sleep(200);
      }
    };
    const settled = (i: Record<string, unknown> | undefined) =>
      i?.task_status === 'NONE' && i.service_status === 'healthy' && i.server_status === 'ACTIVE';
    const noneRunning = async () => {
      for (const m of (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? []) {
        const running = await sfn.send(
          new ListExecutionsCommand({ stateMachineArn: m.stateMachineArn, statusFilter: 'RUNNING' }),
        );
        if (running.executions?.length) return false;
      }
      return true;
    };

    const windows: Window[] = [];
    const measure = async (name: string, fn: () => Promise<void>) => {
      const before = cloneCounts(counts);
      const linesBefore = (await lambdaLines(stateDir)).length;
      const t0 = new Date();
      await fn();
      await until(`${name}: workflows finished`, noneRunning);
      // The conductor's last invocation may still be logging: a moment for the log to catch up is
      // not needed for the counts, which the proxies hold already.
      const t1 = new Date();
      const lines = await lambdaLines(stateDir);
      const { transitions, executions } = await transitionsBetween(sfn, t0, t1);
      const w: Window = {
        name,
        seconds: (t1.getTime() - t0.getTime()) / 1000,
        counts: diffCounts(counts, before),
        lambdas: lambdasBetween(lines, linesBefore, lines.length),
        transitions,
        executions,
      };
      windows.push(w);
      console.log(`  ${name}: ${fixed(w.seconds, 1)} s`);
      return w;
    };

    let id = '';
    const create = await measure('create', async () => {
      const res = await call(api, 'POST', `${base}/instances`, admin.token, {
        instance: { name: 'cost-1', flavorRef: '7', volume: { size: 1 }, datastore: { type: 'redis' } },
      });
      id = String((res.json?.instance as { id?: string } | undefined)?.id ?? '');
      if (res.status !== 200 || !id) throw new Error(`create: ${res.status} ${res.text}`);
      await until('create: ACTIVE and HEALTHY', async () => settled(await instanceItem(id)));
      // The create ends when its guest rests on its doorbell: the minute of polls after its last
      // order is the create's, not the rest's.
      const serverId = String((await instanceItem(id))?.server_id ?? '');
      await until('the guest at rest on its doorbell', async () =>
        (await readFile(agentLogPath(join(stateDir, 'compute'), serverId), 'utf8').catch(() => '')).includes(
          AT_REST_LINE,
        ),
      );
    });
    const rest = await measure('at rest', async () => {
      // A measurement window, not a wait for a condition: the instance does nothing meanwhile.
      await sleep(restSeconds * 1000);
    });
    const stored = await instanceItem(id);
    const itemBytes = Buffer.byteLength(JSON.stringify(stored ?? {}));
    let backupBytes = 0;
    const backup = await measure('backup', async () => {
      const res = await call(api, 'POST', `${base}/backups`, admin.token, {
        backup: { name: 'cost-backup', instance: id },
      });
      const backupId = String((res.json?.backup as { id?: string } | undefined)?.id ?? '');
      if (res.status !== 202 || !backupId) throw new Error(`backup: ${res.status} ${res.text}`);
      await until('backup: COMPLETED', async () => {
        const b = (
          await direct.send(
            new GetCommand({
              TableName: 'troveless-local-backups',
              Key: { project_id: admin.projectId, id: backupId },
            }),
          )
        ).Item;
        if (b?.status === 'FAILED') throw new Error(`backup FAILED: ${JSON.stringify(b.fault ?? b)}`);
        backupBytes = Number(b?.size_bytes ?? b?.bytes ?? 0);
        return b?.status === 'COMPLETED' && settled(await instanceItem(id));
      });
    });
    const restart = await measure('restart', async () => {
      const res = await call(api, 'POST', `${base}/instances/${id}/action`, admin.token, { restart: {} });
      if (res.status !== 202) throw new Error(`restart: ${res.status} ${res.text}`);
      await until('restart: back to ACTIVE and HEALTHY', async () => {
        const i = await instanceItem(id);
        return i?.task_status === 'NONE' && settled(i);
      });
    });
    const del = await measure('delete', async () => {
      const res = await call(api, 'DELETE', `${base}/instances/${id}`, admin.token);
      if (res.status !== 202) throw new Error(`delete: ${res.status} ${res.text}`);
      await until('delete: item gone', async () => (await instanceItem(id)) === undefined);
    });

    report({ create, rest, backup, restart, del }, { itemBytes, backupBytes, restSeconds });
    ok = true;
  } catch (err) {
    console.error(`bench cost failed: ${err instanceof Error ? err.message : err}`);
    ok = false;
  } finally {
    if (bench) await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    for (const m of meters) await m.close().catch(() => {});
    for (const close of closers.reverse()) await close().catch(() => {});
    const clean = await cleanup.finish('bench cost');
    console.log(
      clean ? '\nno process left running' : '\nSOME PROCESSES WERE LEFT RUNNING (killed, see above)',
    );
    ok = ok && clean;
  }
  return ok ? 0 : 1;
}

// ---- the report ----

/** A month of a guest's polls of its queue at rest: the doorbell's guard against a lost ring. */
function restPollsMonth(countedPolls: number): number {
  return (
    Math.max(countedPolls, (3600 / config.doorbellRestPollSeconds) * HOURS_PER_MONTH) * PRICES.sqsRequest
  );
}

/**
 * A month of one guest's doorbell at rest, priced: what the local cloud does not meter (API
 * Gateway's WebSocket connection) is modelled from the agent's settings, and the rest polls too
 * (fewer than one falls in a window) unless more were counted (`countedPolls`, a month's worth).
 */
function doorbellAtRest(countedPolls: number): [string, number][] {
  const minutes = 60 * HOURS_PER_MONTH;
  const keepalives = (3_600_000 / KEEPALIVE_MS) * HOURS_PER_MONTH;
  const reopenings = DOORBELL_RECONNECTS_PER_HOUR * HOURS_PER_MONTH;
  // A Lambda invocation billed `ms`, with its START/END/REPORT lines.
  const invocation = (ms: number) =>
    PRICES.lambdaRequest +
    (ms / 1000) * FUNCTION_GB * PRICES.lambdaGbSecond +
    (LOG_BYTES_PER_INVOCATION / 1e9) * PRICES.logsGb;
  return [
    [
      `guest queue polls at rest (one per ${config.doorbellRestPollSeconds} s unless rung)`,
      restPollsMonth(countedPolls),
    ],
    ['doorbell connection (API Gateway WebSocket, per minute)', minutes * PRICES.websocketConnectionMinute],
    [
      `doorbell keep-alives (every ${KEEPALIVE_MS / 60_000} min: a message, a Lambda call)`,
      keepalives * (PRICES.websocketMessage + invocation(1)),
    ],
    [
      'doorbell reopened every 2 h ($connect: a Lambda call, one write)',
      // $connect as measured locally on a cold container (~130 ms, a key unwrapped): an upper bound.
      reopenings * (invocation(130) + PRICES.dynamoWriteUnit + PRICES.kmsRequest),
    ],
  ];
}

interface Ops {
  create: Window;
  rest: Window;
  backup: Window;
  restart: Window;
  del: Window;
}

function countsTable(ops: Ops): void {
  const list: Window[] = [ops.create, ops.rest, ops.backup, ops.restart, ops.del];
  const w = [44, 9, 9, 9, 9, 9];
  console.log(`\nrequests counted per window (rest: ${fixed(ops.rest.seconds, 0)} s measured)`);
  console.log(row(['', ...list.map((x) => x.name)], w));
  const keys = new Set<string>();
  for (const x of list) for (const k of x.counts.requests.keys()) keys.add(k);
  for (const k of [...keys].sort())
    console.log(row([k, ...list.map((x) => String(x.counts.requests.get(k) ?? 0))], w));
  const fns = new Set<string>();
  for (const x of list) for (const k of x.lambdas.byFunction.keys()) fns.add(k);
  for (const f of [...fns].sort()) {
    console.log(
      row([`lambda ${f} invocations`, ...list.map((x) => String(x.lambdas.byFunction.get(f)?.n ?? 0))], w),
    );
    console.log(
      row(
        [
          `lambda ${f} billed ms (local)`,
          ...list.map((x) => String(x.lambdas.byFunction.get(f)?.billedMs ?? 0)),
        ],
        w,
      ),
    );
  }
  console.log(row(['dynamodb write units (reported)', ...list.map((x) => fixed(x.counts.writeUnits, 1))], w));
  console.log(
    row(['dynamodb refused conditional writes', ...list.map((x) => String(x.counts.refusedWrites))], w),
  );
  console.log(row(['dynamodb read units (reported)', ...list.map((x) => fixed(x.counts.readUnits, 1))], w));
  console.log(row(['step functions executions', ...list.map((x) => String(x.executions))], w));
  console.log(row(['step functions state transitions', ...list.map((x) => String(x.transitions))], w));
  console.log(row(['s3 bytes uploaded', ...list.map((x) => String(x.counts.s3BytesIn))], w));
}

function report(ops: Ops, facts: { itemBytes: number; backupBytes: number; restSeconds: number }): void {
  countsTable(ops);
  const { rest } = ops;
  const perHour = 3600 / rest.seconds;
  const month = perHour * HOURS_PER_MONTH;
  const c = rest.counts;
  const heartbeats = total(c, 'sqs SendMessage conductor-queue');
  const guestPolls = total(c, 'sqs ReceiveMessage guest-queue');
  const conductorRuns = invocations(rest.lambdas, 'conductor');
  const conductorMs = billedMs(rest.lambdas, 'conductor');
  const recordsPerRun = conductorRuns ? heartbeats / conductorRuns : 1;
  const writeUnits = c.writeUnits + c.refusedWrites;
  const readUnits = c.readUnits;
  // The event sources' own polls of their queues are the deployment's, priced below; what is left
  // on the guest's queue (or on none) is this instance's.
  const otherSqs = total(c, 'sqs ', (k) => k.endsWith('guest-queue') || k.endsWith('no-queue')) - guestPolls;

  console.log(
    `\nat rest, one instance: measured over ${fixed(rest.seconds, 0)} s and EXTRAPOLATED x${fixed(month, 0)} to a month ` +
      `(${HOURS_PER_MONTH} h): ${heartbeats} heartbeats, ${guestPolls} polls of the guest's queue, ${conductorRuns} conductor ` +
      `invocations (${fixed(recordsPerRun, 1)} records each, ${fixed(conductorMs / Math.max(1, conductorRuns), 0)} ms billed each, local), ` +
      `${fixed(writeUnits, 1)} write and ${fixed(readUnits, 1)} read units; instance item ${facts.itemBytes} bytes`,
  );
  // Two columns: this instance alone (as measured: a batch holds its one heartbeat) and one of a
  // fleet whose heartbeats fill the conductor's batches of 10 (modelled from the same counts).
  const lines: [string, number, number][] = [];
  const line = (label: string, alone: number, fleet = alone) =>
    lines.push([label, alone * month, fleet * month]);
  // The guest rests on its doorbell (lib/guest/doorbell.ts): a poll of its queue every
  // rest_poll_seconds (fewer than one per window: modelled, or as counted if more), the connection's
  // minutes, its keep-alives (a message and a Lambda invocation each) and a reopening every 2 h.
  for (const [label, monthly] of doorbellAtRest(guestPolls * month)) lines.push([label, monthly, monthly]);
  line('heartbeats sent (SQS SendMessage)', heartbeats * PRICES.sqsRequest);
  // Lambda's event source: one ReceiveMessage and one DeleteMessageBatch per batch it invokes with.
  line(
    'conductor batches taken (SQS Receive + DeleteMessageBatch)',
    conductorRuns * 2 * PRICES.sqsRequest,
    (heartbeats / 10) * 2 * PRICES.sqsRequest,
  );
  line(
    'conductor invocations (Lambda requests)',
    conductorRuns * PRICES.lambdaRequest,
    (heartbeats / 10) * PRICES.lambdaRequest,
  );
  line(
    'conductor duration (Lambda GB-s, 256 MB arm64)',
    (conductorMs / 1000) * FUNCTION_GB * PRICES.lambdaGbSecond,
    // Per record, as measured alone (an upper bound: a batch shares its start-up).
    (conductorMs / 1000) * FUNCTION_GB * PRICES.lambdaGbSecond,
  );
  line(
    'conductor logs (CloudWatch, START/END/REPORT)',
    ((conductorRuns * LOG_BYTES_PER_INVOCATION) / 1e9) * PRICES.logsGb,
    ((heartbeats / 10) * LOG_BYTES_PER_INVOCATION * PRICES.logsGb) / 1e9,
  );
  line('heartbeat writes (DynamoDB write units)', writeUnits * PRICES.dynamoWriteUnit);
  // The scheduled sync and backup scheduler scan the table: alone, half a unit per scan at least.
  line('reads at rest: the scheduled scans (DynamoDB read units)', readUnits * PRICES.dynamoReadUnit);
  if (otherSqs) line('other SQS requests on the guest queue', otherSqs * PRICES.sqsRequest);
  const kmsPerMonth = (60 / KEY_CACHE_TTL_MINUTES) * HOURS_PER_MONTH;
  lines.push([
    `key cache refresh: KMS Decrypt 1 per ${KEY_CACHE_TTL_MINUTES} min (modelled)`,
    kmsPerMonth * PRICES.kmsRequest,
    kmsPerMonth * PRICES.kmsRequest,
  ]);
  console.log(
    `(the instance item is ${facts.itemBytes} bytes: DynamoDB bills a write by the item's size, ` +
      `${Math.ceil(facts.itemBytes / 1024)} unit(s) per heartbeat whatever it changes)`,
  );
  const aloneTotal = lines.reduce((s, l) => s + l[1], 0);
  const fleetTotal = lines.reduce((s, l) => s + l[2], 0);
  const w = [62, 12, 12];
  console.log(
    `\ncontrol plane cost per instance-month at rest, ${HEARTBEAT_SECONDS} s heartbeats (${PRICES.region})`,
  );
  console.log(row(['', 'alone', 'in a fleet'], w));
  for (const [label, a, f] of lines) console.log(row([label, usd(a), usd(f)], w));
  console.log(row(['total', usd(aloneTotal, 4), usd(fleetTotal, 4)], w));
  console.log(
    row(
      [
        `goal <= $${GOAL_PER_INSTANCE_MONTH} per instance-month at rest`,
        aloneTotal <= GOAL_PER_INSTANCE_MONTH ? 'ok' : 'MISSED',
        fleetTotal <= GOAL_PER_INSTANCE_MONTH ? 'ok' : 'MISSED',
      ],
      w,
    ),
  );
  const longPoll = (3600 / GUEST_WAIT_SECONDS) * HOURS_PER_MONTH * PRICES.sqsRequest;
  const doorbell = doorbellAtRest(0).reduce((s, [, v]) => s + v, 0);
  // The least any build of issue 16's design can cost: each heartbeat one SQS send into the
  // conductor and one table write of at least a unit (item 1), and a guest reachable at rest.
  const floorHeartbeats =
    (3600 / HEARTBEAT_SECONDS) * HOURS_PER_MONTH * (PRICES.sqsRequest + PRICES.dynamoWriteUnit);
  console.log(
    `(the floor at ${HEARTBEAT_SECONDS} s: a send and a write unit per heartbeat, nothing else, ` +
      `${usd(floorHeartbeats, 4)}; with the guest reachable at rest on its doorbell ` +
      `${usd(floorHeartbeats + doorbell, 4)}, before the conductor, the scans and the key cache)`,
  );
  console.log(
    `("alone": as measured, a batch per heartbeat; "in a fleet": the conductor's batches full at 10 records. ` +
      `The guest's orders at rest cost ${usd(doorbell, 4)} a month on its doorbell; long-polling its queue ` +
      `at SQS's longest wait, as without one, ${usd(longPoll, 4)}.)`,
  );

  // Per operation, as counted (each includes the guest's own heartbeats and polls meanwhile).
  console.log('\nper operation (as counted, including the heartbeats and polls during it)');
  const ow = [10, 8, 7, 7, 7, 7, 7, 9, 7, 10];
  console.log(row(['', 'seconds', 'SQS', 'Lambda', 'WRU', 'RRU', 'SFN', 'S3', 'KMS*', 'cost'], ow));
  for (const op of [ops.create, ops.backup, ops.restart, ops.del]) {
    // KMS (modelled): one Decrypt per guest order sent (each send unwraps the key), one Encrypt for
    // the new instance's key or the backup's data key.
    const orders = total(op.counts, 'sqs SendMessage guest-queue');
    const kms = orders + (op === ops.create || op === ops.backup ? 1 : 0);
    // Each order rings the guest's doorbell: one WebSocket message (modelled; the read is counted).
    const price =
      sum(priceWindow(op, { apiRequests: 1, kmsRequests: kms })) + orders * PRICES.websocketMessage;
    console.log(
      row(
        [
          op.name,
          fixed(op.seconds, 1),
          String(total(op.counts, 'sqs ')),
          String(invocations(op.lambdas)),
          fixed(op.counts.writeUnits + op.counts.refusedWrites, 0),
          fixed(op.counts.readUnits, 1),
          String(op.transitions),
          String(total(op.counts, 's3 ')),
          String(kms),
          usd(price),
        ],
        ow,
      ),
    );
  }
  // S3 per GB of backup: the upload is cut into parts of PART_BYTES, plus create and complete.
  const partsPerGb = Math.ceil(1024 ** 3 / PART_BYTES);
  const perGb = (partsPerGb + 2) * PRICES.s3Tier1Request;
  const measuredParts = total(ops.backup.counts, 's3 UploadPart') + total(ops.backup.counts, 's3 PutObject');
  console.log(
    `S3 per GB of backup: ${partsPerGb} UploadPart + CreateMultipartUpload + CompleteMultipartUpload = ` +
      `${usd(perGb)} in requests, plus ${usd(PRICES.s3GbMonth, 3)} per stored GB-month; this backup: ` +
      `${ops.backup.counts.s3BytesIn} bytes in ${measuredParts} part(s) (reported size ${facts.backupBytes})`,
  );
  console.log(
    '(* KMS modelled: the local cloud wraps keys with a local secret, not KMS. Lambda durations are local.)',
  );

  // What each choice costs: the model above (bench/cost-model.ts), one setting changed at a time.
  const counted: RestCounts = {
    writeUnitsPerHeartbeat: heartbeats ? writeUnits / heartbeats : 1,
    conductorMsPerHeartbeat: conductorRuns ? conductorMs / conductorRuns : 0,
    readUnitsPerMonth: readUnits * month,
    doorbellMonth: doorbell,
    restPollsMonth: restPollsMonth(0),
    keyCacheMonth: kmsPerMonth * PRICES.kmsRequest,
    functionGb: FUNCTION_GB,
    logBytesPerInvocation: LOG_BYTES_PER_INVOCATION,
  };
  console.log('\nwhat each choice costs per instance-month at rest (model from the counts above)');
  const cw = [40, 14, 14, 14];
  console.log(row(['heartbeat interval', 'batch 1', 'batch 10', 'batch 100'], cw));
  for (const s of [30, 60, 120, 300])
    console.log(
      row(
        [
          `${s} s`,
          ...[1, 10, 100].map((batch) =>
            usd(restTotal(counted, { ...AS_BUILT, heartbeatSeconds: s, batch }), 4),
          ),
        ],
        cw,
      ),
    );
  console.log(
    `(each includes the guest's doorbell at rest, ${usd(doorbell, 4)}; a guest long-polling its queue instead ` +
      `pays ${usd(longPoll, 4)} at a 20 s wait, ${usd(2 * longPoll, 4)} at 10 s)`,
  );
  printAlternatives(counted);
  const fixedDeployment =
    2 * ESM_POLLERS * (3600 / 20) * HOURS_PER_MONTH * PRICES.sqsRequest +
    SCANS_PER_HOUR * HOURS_PER_MONTH * PRICES.lambdaRequest +
    PRICES.kmsKeyMonth;
  console.log(
    `per deployment, whatever its size: ${usd(fixedDeployment, 2)} a month (two SQS event sources polling idle ` +
      `with ${ESM_POLLERS} pollers each, the scheduled functions' invocations, the KMS key): ` +
      `${usd(fixedDeployment / 1000, 5)} per instance at 1,000 instances, ${usd(fixedDeployment / 30_000, 5)} at 30,000`,
  );
  console.log(`prices: ${PRICES.region}, read ${PRICES.read}; sources in bench/prices.ts`);
}

/**
 * What would meet the goal at 60 s: the three parts that make most of the price, each swapped for
 * what AWS offers in its place, alone and together (modelled: none of them runs here or is built).
 */
function printAlternatives(counted: RestCounts): void {
  console.log(
    `\nwhat would meet the goal at ${HEARTBEAT_SECONDS} s heartbeats (MODELLED from the counts above, not run: ` +
      `none of these is built, and DynamoDB Local, Kinesis and IoT Core capacity cannot be measured here; ` +
      `parts in a fleet of ${AS_BUILT.fleet.toLocaleString('en-US')}, where one Kinesis shard takes every heartbeat)`,
  );
  const parts = Object.keys(restCost(counted, AS_BUILT));
  const small = 1000;
  const w = [58, ...parts.map(() => 11), 9, 7, 12];
  console.log(
    row(
      [
        'design',
        'transport',
        'conductor',
        'writes',
        'scans',
        'doorbell',
        'keys',
        'total',
        'goal',
        'at 1,000',
      ],
      w,
    ),
  );
  for (const { label, design } of alternatives()) {
    const cost = restCost(counted, design);
    const totalCost = restTotal(counted, design);
    console.log(
      row(
        [
          label,
          ...parts.map((p) => usd(cost[p] ?? 0, 4)),
          usd(totalCost, 4),
          totalCost <= GOAL_PER_INSTANCE_MONTH ? 'ok' : 'over',
          usd(restTotal(counted, { ...design, fleet: small }), 4),
        ],
        w,
      ),
    );
  }
  console.log(
    '(provisioned: auto scaling at 70% of the capacity paid for. Kinesis: a put per heartbeat, batches of up to 100 ' +
      '(what a shard gets in a second), ' +
      'its shard-hours shared by the fleet ("at 1,000": the total in a fleet of 1,000). MQTT: connection-minutes, free keep-alive pings, the same rest polls.)',
  );
}
