// `npm run bench -- heartbeat`: how many guest heartbeats the conductor ingests per second. 500
// simulated guests (instance items with their own wrapped keys) send signed heartbeats to the
// conductor queue, 10 rounds each, as fast as several senders can; the clock stops when every
// instance shows its last round. Set against, in the same run, the raw SQS round trip of the same
// server and the conductor's own conditional update sent raw from one client, on the instances
// table itself (another project's items) and on a fresh twin of it. Applied heartbeats are counted
// on a stream the bench turns on for the instances table: one MODIFY per update that went through.
// After a first run where every conductor worker meets each guest, three steady-state runs, each
// set against the raw rate measured right around it; the goal is judged on their median. Then one
// run of heartbeats as agents send them, with the engine's counters: every fifth also carries the
// guest's last five metrics samples, which the conductor keeps in a second write (shown beside the
// goal, not judged: see that run's note).
//
// DynamoDB Local runs alone on a core of its own (bench/cloud.ts `pinTableApart`), the raw loops'
// client and everything of the ingest (SQS server, poller, serverless-offline, senders) on the
// other: the goal is the table's limit, and in AWS the table's capacity is its own. With every
// process on both cores, the CPU the conductor's path spends (the Lambda runtime, the SDK, the
// event source's receives, the SQS server) is taken from the very table the run is set against,
// where in AWS it is Lambda's and SQS's own. `--shared-cores` measures it that way, for comparison.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { heartbeatUpdate } from '../lib/conductor/heartbeats.ts';
import { newGuestKey, wrapKey } from '../lib/guest/keys.ts';
import { seal } from '../lib/guest/protocol.ts';
import { openEnvelope } from '../lib/guest/signing.ts';
import type { InstanceItem } from '../lib/instances/model.ts';
import { EVENT_SOURCE_POLLERS } from '../local/cloud.ts';
import { localCredentials } from '../local/dynamodb.ts';
import {
  type BenchCloud,
  Cleanup,
  cpusAllowed,
  documentClient,
  dynamoClient,
  fixed,
  INSTANCES_TABLE,
  instanceItem,
  load,
  login,
  notPinned,
  percentile,
  pinTableApart,
  putItems,
  ratio,
  row,
  sleep,
  startBenchCloud,
  timedPool,
  verdict,
} from './cloud.ts';

const GUESTS = 500;
const ROUNDS = 10;
const SENDERS = 4;
const RAW_UPDATES = 500;
const RAW_CONDUCTOR = 300;
const GOAL_PER_SECOND = 500;
/** Issue 16: the conductor ingests at least this share of the table's raw conditional-update rate. */
const GOAL_TABLE_RATIO = 0.9;
/** Steady-state runs, each judged against the raw rate measured around it; the goal on their median. */
const STEADY_ROUNDS = 3;
const INGEST_TIMEOUT_MS = 180_000;
const CONDUCTOR_QUEUE = 'troveless-local-conductor';
const RAW_QUEUE = 'troveless-bench-raw';
const RAW_TABLE = 'troveless-bench-raw-instances';

type Docs = ReturnType<typeof documentClient>;

/** SendMessageBatch in tens, `senders` in flight; resolves with ms from the first send to the last answer. */
async function sendAll(sqs: SQSClient, url: string, bodies: string[], senders: number) {
  const batches: string[][] = [];
  for (let i = 0; i < bodies.length; i += 10) batches.push(bodies.slice(i, i + 10));
  let failed = 0;
  const { wallMs } = await timedPool(batches.length, senders, async (i) => {
    const Entries = (batches[i] ?? []).map((MessageBody, n) => ({ Id: String(n), MessageBody }));
    const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
    failed += out.Failed?.length ?? 0;
  });
  if (failed) throw new Error(`${failed} messages were not accepted by SendMessageBatch`);
  return wallMs;
}

async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const a = out.Attributes ?? {};
  return (
    Number(a.ApproximateNumberOfMessages ?? 0) +
    Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

// ---- baselines ----

/**
 * `bodies` sent to a fresh queue `name` as the run sends them, and taken off by `receivers` loops:
 * each `receive`s a batch, `handle`s it, deletes it. Resolves with messages per second, first send
 * to last delete. What the two baselines below share; they differ in how they receive and handle.
 */
async function throughQueue(
  sqs: SQSClient,
  name: string,
  bodies: string[],
  receivers: number,
  receive: (url: string) => Promise<Message[]>,
  handle: (batch: Message[]) => Promise<unknown> = async () => {},
): Promise<number> {
  const { QueueUrl: url = '' } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }),
  );
  try {
    let deleted = 0;
    let done = false;
    const t0 = performance.now();
    const receiver = async () => {
      while (!done) {
        const batch = await receive(url);
        if (batch.length === 0) continue;
        await handle(batch);
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: batch.map((m, n) => ({ Id: String(n), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
        deleted += batch.length;
        if (deleted >= bodies.length) done = true;
      }
    };
    let failure: unknown;
    const loops = Array.from({ length: receivers }, () =>
      receiver().catch((err: unknown) => {
        failure ??= err;
        done = true;
      }),
    );
    let ms = Number.NaN;
    try {
      await sendAll(sqs, url, bodies, SENDERS);
      const deadline = Date.now() + INGEST_TIMEOUT_MS;
      while (!done && Date.now() < deadline) await sleep(20);
      ms = performance.now() - t0;
    } finally {
      done = true;
      await Promise.all(loops);
    }
    if (failure) throw failure;
    if (deleted < bodies.length) throw new Error(`${name}: only ${deleted} of ${bodies.length} came back`);
    return (bodies.length / ms) * 1000;
  } finally {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
  }
}

/**
 * The raw SQS round trip: the same bodies sent the same way, taken off by `receivers` loops that
 * receive as the event source does (one message with a long poll, then a top-up to ten), and delete
 * in batches, with no processing between. Per second.
 */
function rawSqs(sqs: SQSClient, bodies: string[], receivers: number): Promise<number> {
  return throughQueue(sqs, `${RAW_QUEUE}-${receivers}`, bodies, receivers, async (url) => {
    const first = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }),
    );
    if (!first.Messages?.length) return [];
    const more = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 9, WaitTimeSeconds: 0 }),
    );
    return [...first.Messages, ...(more.Messages ?? [])];
  });
}

/**
 * The least any SQS-to-table consumer does with these heartbeats, in this process, with no Lambda
 * runtime, no event source and no signature check between: `receivers` loops, each receiving up
 * to ten messages, writing each one's conditional update on the raw table (ten in flight) and
 * deleting the batch. The conductor's ingest must share this machine's two cores between the SQS
 * server and DynamoDB Local as this does; the raw update alone has both to itself. Per second.
 */
function rawPipeline(
  sqs: SQSClient,
  docs: Docs,
  bodies: string[],
  items: InstanceItem[],
  receivers: number,
): Promise<number> {
  const byId = new Map(items.map((item) => [item.id, item]));
  return throughQueue(
    sqs,
    `${RAW_QUEUE}-pipeline`,
    bodies,
    receivers,
    async (url) =>
      (
        await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        )
      ).Messages ?? [],
    (batch) =>
      Promise.all(
        batch.map((m) => {
          const item = byId.get(openEnvelope(m.Body ?? '')?.instance_id ?? '');
          return item
            ? rawUpdate(docs, item)
            : Promise.reject(new Error('a heartbeat of no instance of this run'));
        }),
      ),
  );
}

/** A table shaped like the instances table (keys, by-id index), with the same stream setting. */
async function rawTable(ddb: DynamoDBClient): Promise<void> {
  const { Table } = await ddb.send(new DescribeTableCommand({ TableName: INSTANCES_TABLE }));
  await ddb.send(
    new CreateTableCommand({
      TableName: RAW_TABLE,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: Table?.AttributeDefinitions,
      KeySchema: Table?.KeySchema,
      GlobalSecondaryIndexes: Table?.GlobalSecondaryIndexes?.map((g) => ({
        IndexName: g.IndexName,
        KeySchema: g.KeySchema,
        Projection: g.Projection,
      })),
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'KEYS_ONLY' },
    }),
  );
}

interface RawDynamo {
  sequential: number;
  concurrent: number;
  conductor: number;
  p50: number;
}

/** Grows across every raw update of the run: each one's condition (newer than the last) holds. */
let rawSent = 1;

/**
 * The conductor's own write of a steady-state heartbeat (lib/conductor/heartbeats.ts: its time
 * alone, on condition of the stored key, status and order, answering with the item as it was),
 * sent to the raw table from this process: the table's rate for the very write the conductor
 * makes, with nothing in front of it.
 */
function rawUpdate(docs: Docs, item: InstanceItem, table = RAW_TABLE): Promise<unknown> {
  const guest = { projectId: item.project_id, instanceId: item.id, wrappedKey: item.wrapped_key };
  const report = {
    method: 'heartbeat' as const,
    instance_id: item.id,
    sent: rawSent++,
    payload: { service_status: item.service_status },
  };
  return docs.send(new UpdateCommand(heartbeatUpdate(guest, report, true, table))).catch((err: Error) => {
    // A failed condition is one of the conductor's outcomes too (a stale heartbeat): it counts.
    if (err.name !== 'ConditionalCheckFailedException') throw err;
  });
}

let rawCalls = 0;

/** Updates the conductor has in flight at most: its poll loops, each with a batch of ten. */
const CONDUCTOR_IN_FLIGHT = EVENT_SOURCE_POLLERS * 10;

/**
 * The raw conditional update, per second, on `table` (the raw table unless said): the better of
 * 10 in flight and as many as the conductor has (50), one after the other, so that the baseline
 * is the table's limit whichever way it is reached (on a core of its own, 50 in flight did up to
 * a fifth more than 10). Measured again right before and right after each ingest run, which is
 * judged against their mean: on this machine the same loop moved by a third from one run to the
 * next.
 */
async function rawConcurrent(docs: Docs, items: InstanceItem[], table = RAW_TABLE): Promise<number> {
  let best = 0;
  // Which goes first alternates from one call to the next: the second one meets a warmer JVM.
  const order = rawCalls++ % 2 === 0 ? [10, CONDUCTOR_IN_FLIGHT] : [CONDUCTOR_IN_FLIGHT, 10];
  for (const inFlight of order) {
    const conc = await timedPool(RAW_UPDATES, inFlight, (i) =>
      rawUpdate(docs, items[i % items.length] as InstanceItem, table).then(() => {}),
    );
    best = Math.max(best, (RAW_UPDATES / conc.wallMs) * 1000);
  }
  return best;
}

/** The raw rate on either side of an ingest run: on the raw table, and on the conductor's own. */
interface Around {
  /** The raw table: a twin of the instances table, made for the run (no history, its own stream). */
  twin: [number, number];
  /**
   * The instances table itself, on items of another project: the same table, index and stream as
   * the conductor's writes. The table's limit (the goal's baseline): in DynamoDB Local the same
   * raw update ran 10-25% slower here than on the fresh twin, and slower as the run went on,
   * whatever sent it (a bare pipeline too), so the twin alone set the conductor against a faster
   * table than its own.
   */
  own: [number, number];
}

/**
 * One after the other, each with DynamoDB Local to itself, the instances table next to the run on
 * both sides (before: twin then own; after: own then twin), so that neither table is always
 * measured first while DynamoDB Local's pace drifts.
 */
async function rawAround(
  docs: Docs,
  items: InstanceItem[],
  ownItems: InstanceItem[],
  side: 'before' | 'after',
): Promise<{ twin: number; own: number }> {
  const measure = {
    twin: () => rawConcurrent(docs, items),
    own: () => rawConcurrent(docs, ownItems, INSTANCES_TABLE),
  };
  const rates = { twin: 0, own: 0 };
  for (const which of side === 'before' ? (['twin', 'own'] as const) : (['own', 'twin'] as const))
    rates[which] = await measure[which]();
  return rates;
}

const aroundOf = (before: { twin: number; own: number }, after: { twin: number; own: number }): Around => ({
  twin: [before.twin, after.twin],
  own: [before.own, after.own],
});

/**
 * From one client: the conductor's conditional update alone (1 and 10 in flight), and the three
 * calls the conductor makes per heartbeat (by-id query, get, conditional update) with 10 in flight,
 * as it handles a batch of ten. Per second.
 */
async function rawDynamo(docs: Docs, items: InstanceItem[]): Promise<RawDynamo> {
  const update = (item: InstanceItem) => rawUpdate(docs, item);
  const pick = (i: number) => items[i % items.length] as InstanceItem;
  const seq = await timedPool(RAW_UPDATES, 1, (i) => update(pick(i)).then(() => {}));
  const concurrent = await rawConcurrent(docs, items);
  const full = await timedPool(RAW_CONDUCTOR, 10, async (i) => {
    const item = pick(i);
    const keys = await docs.send(
      new QueryCommand({
        TableName: RAW_TABLE,
        IndexName: 'by-id',
        KeyConditionExpression: 'id = :id',
        ExpressionAttributeValues: { ':id': item.id },
      }),
    );
    const key = keys.Items?.[0];
    await docs.send(
      new GetCommand({ TableName: RAW_TABLE, Key: { project_id: key?.project_id, id: item.id } }),
    );
    await update(item);
  });
  return {
    sequential: (RAW_UPDATES / seq.wallMs) * 1000,
    concurrent,
    conductor: (RAW_CONDUCTOR / full.wallMs) * 1000,
    p50: percentile(seq.ms, 50),
  };
}

// ---- counting applied heartbeats: the table's stream has one MODIFY per applied update ----

async function streams(endpoint: string, op: string, body: object): Promise<Record<string, unknown>> {
  // DynamoDB Local serves the Streams API on its own port; it reads the access key, not the signature.
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDBStreams_20120810.${op}`,
      authorization: `AWS4-HMAC-SHA256 Credential=${localCredentials.accessKeyId}/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`DynamoDB Streams ${op}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function enableStream(ddb: DynamoDBClient, table: string): Promise<string> {
  await ddb.send(
    new UpdateTableCommand({
      TableName: table,
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'KEYS_ONLY' },
    }),
  );
  const { Table } = await ddb.send(new DescribeTableCommand({ TableName: table }));
  if (!Table?.LatestStreamArn) throw new Error(`${table} has no stream after enabling it`);
  return Table.LatestStreamArn;
}

/** MODIFY records of `projectId`'s items: the raw updates on the same table (another project's) do not count. */
async function countModifies(endpoint: string, streamArn: string, projectId: string): Promise<number> {
  const described = (await streams(endpoint, 'DescribeStream', { StreamArn: streamArn })) as {
    StreamDescription?: { Shards?: { ShardId: string }[] };
  };
  let count = 0;
  for (const shard of described.StreamDescription?.Shards ?? []) {
    let iterator = (
      (await streams(endpoint, 'GetShardIterator', {
        StreamArn: streamArn,
        ShardId: shard.ShardId,
        ShardIteratorType: 'TRIM_HORIZON',
      })) as { ShardIterator?: string }
    ).ShardIterator;
    // An open shard keeps handing out iterators: stop at the first empty page.
    for (let page = 0; iterator && page < 1000; page++) {
      const out = (await streams(endpoint, 'GetRecords', { ShardIterator: iterator, Limit: 1000 })) as {
        Records?: { eventName?: string; dynamodb?: { Keys?: { project_id?: { S?: string } } } }[];
        NextShardIterator?: string;
      };
      const records = out.Records ?? [];
      if (records.length === 0) break;
      count += records.filter(
        (r) => r.eventName === 'MODIFY' && r.dynamodb?.Keys?.project_id?.S === projectId,
      ).length;
      iterator = out.NextShardIterator;
    }
  }
  return count;
}

/** How many instances do not show their last heartbeat yet (Query of the project's partition, paged). */
async function notYetFinal(docs: Docs, projectId: string, final: Map<string, number>): Promise<number> {
  let behind = final.size;
  let start: Record<string, unknown> | undefined;
  for (let page = 0; page < 100; page++) {
    const out = await docs.send(
      new QueryCommand({
        TableName: INSTANCES_TABLE,
        KeyConditionExpression: 'project_id = :p',
        ExpressionAttributeValues: { ':p': projectId },
        ProjectionExpression: 'id, last_seen_heartbeat',
        ExclusiveStartKey: start,
      }),
    );
    for (const item of out.Items ?? []) {
      const want = final.get(String(item.id));
      if (want !== undefined && item.last_seen_heartbeat === want) behind--;
    }
    start = out.LastEvaluatedKey;
    if (!start) break;
  }
  return behind;
}

// ---- main ----

interface Ingest {
  /** ms from the first send until the last batch was answered. */
  sendMs: number;
  /** ms until the queue held nothing (visible, in flight or delayed). */
  drainedMs: number;
  /** ms until every instance showed its last round; NaN when that did not happen in time. */
  doneMs: number;
  /** ms when the wait ended (done, or the timeout). */
  endMs: number;
  /** Instances not showing their last round at the end. */
  behind: number;
  /** Messages still on the conductor queue at the end. */
  left: number;
  dlq: number;
  applied: number;
}

/** The conductor's invocations as serverless-offline logged them: "(λ: conductor) ... Duration: 12.3 ms". */
async function conductorDurations(stateDir: string): Promise<number[]> {
  const log = await readFile(join(stateDir, 'logs', 'offline.log'), 'utf8').catch(() => '');
  return [...log.matchAll(/\(λ: conductor\) RequestId: \S+ {2}Duration: ([\d.]+) ms/g)].map((m) =>
    Number(m[1]),
  );
}

export async function run(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--shared-cores');
  if (unknown.length) {
    console.error(`usage: npm run bench -- heartbeat [--shared-cores]; unknown: ${unknown.join(' ')}`);
    return 2;
  }
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  let ok = true;
  const total = GUESTS * ROUNDS;
  console.log(
    `bench heartbeat: ${GUESTS} guests x ${ROUNDS} rounds = ${total} signed heartbeats to the conductor queue ` +
      `from ${SENDERS} concurrent senders (SendMessageBatch); ${EVENT_SOURCE_POLLERS} poll loop(s) per ` +
      `event source; node ${process.version}`,
  );
  try {
    // No scheduled functions: the server sync (every minute) and the backup scheduler (every five)
    // each Scan the instances table, which lands in some ingest runs and in almost none of the
    // short raw loops it is set against; the comparison is of the conductor and the table alone.
    bench = await startBenchCloud(cleanup, 'hb', { TROVELESS_SCHEDULES: 'off' });
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    // The goal is the table's limit: the table gets a core of its own, for the raw loops and the
    // runs alike (`--shared-cores` leaves every process on every core, as before).
    const pinning = args.includes('--shared-cores')
      ? notPinned('--shared-cores')
      : pinTableApart(bench.stateDir);
    console.log(`  ${pinning.said}; this process may run on CPU ${cpusAllowed()}`);
    const { cloud } = bench;
    const admin = await login(bench.api, 'admin', 'admin');
    process.env.TROVELESS_TOKEN_SECRET = cloud.env.TROVELESS_TOKEN_SECRET;
    process.env.TROVELESS_GUEST_KEK = cloud.env.TROVELESS_GUEST_KEK;
    const client = dynamoClient(cloud);
    const docs = documentClient(client);
    const sqs = new SQSClient({
      endpoint: cloud.endpoints.sqs,
      region: 'us-east-1',
      credentials: localCredentials,
    });
    const queue = cloud.queues.find((q) => q.name === CONDUCTOR_QUEUE);
    const dlq = cloud.queues.find((q) => q.name === `${CONDUCTOR_QUEUE}-dlq`);
    if (!queue) throw new Error(`no ${CONDUCTOR_QUEUE} queue in this cloud`);

    // 500 guests, each with its own key, stored wrapped as the API stores it.
    const t = performance.now();
    const keys = Array.from({ length: GUESTS }, () => newGuestKey());
    const items = await Promise.all(
      keys.map(async (key, n) => instanceItem(admin.projectId, n, await wrapKey(key))),
    );
    await putItems(docs, items);
    console.log(`  ${GUESTS} instance items written in ${fixed((performance.now() - t) / 1000)} s`);

    // Every message signed up front, round after round; `sent` grows by round for each guest.
    // `withMetrics`: as agents send them, every fifth heartbeat carrying the guest's last five
    // samples for GET /metrics (issue 14 #5; TROVELESS_METRICS_SAMPLES_PER_WRITE), which the
    // conductor keeps in a second write of its own (the operations table).
    const signRounds = (withMetrics = false) => {
      const base = Date.now() / 1000;
      const final = new Map<string, number>();
      const bodies: string[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        items.forEach((item, n) => {
          const sent = base + r;
          final.set(item.id, sent);
          bodies.push(
            seal(keys[n] as Buffer, item.id, {
              method: 'heartbeat',
              instance_id: item.id,
              sent,
              payload: {
                service_status: 'healthy',
                ...(withMetrics && r % 5 === 4
                  ? {
                      samples: [0, 1, 2, 3, 4].map((k) => ({
                        t: sent - 4 + k,
                        service_status: 'healthy',
                        connections: 1 + (n % 7),
                        queries: 1000 * (r - 4 + k) + n,
                      })),
                    }
                  : {}),
              },
            }),
          );
        });
      }
      return { final, bodies };
    };
    const { final, bodies } = signRounds();

    // Baselines first, while the conductor queue is idle.
    await rawTable(client);
    await putItems(docs, items, RAW_TABLE);
    // As many in the instances table under a project of their own, for the raw rate on that table.
    const ownItems = items.map((item, n) =>
      instanceItem(`bench-raw-${admin.projectId}`, n, item.wrapped_key),
    );
    await putItems(docs, ownItems);
    const rawDb = await rawDynamo(docs, items);
    console.log(
      `  raw DynamoDB conditional update: ${fixed(rawDb.sequential, 0)}/s one at a time (p50 ${fixed(rawDb.p50, 1)} ms), ` +
        `${fixed(rawDb.concurrent, 0)}/s with 10 or ${CONDUCTOR_IN_FLIGHT} in flight (the better); the conductor's 3 calls per heartbeat: ` +
        `${fixed(rawDb.conductor, 0)} heartbeats/s`,
    );
    const rawSqs1 = await rawSqs(sqs, bodies, 1);
    const rawSqs5 = await rawSqs(sqs, bodies, 5);
    console.log(
      `  raw SQS send+receive+delete of ${total}: ${fixed(rawSqs1, 0)}/s with 1 receive loop, ${fixed(rawSqs5, 0)}/s with 5`,
    );

    // The run itself.
    const streamArn = await enableStream(client, INSTANCES_TABLE);
    const problemsBefore = bench.problems.length;
    const firstBefore = await rawAround(docs, items, ownItems, 'before');
    const ingest = await runIngest(sqs, queue.url, dlq?.url, docs, admin.projectId, bodies, final);
    const firstAfter = await rawAround(docs, items, ownItems, 'after');
    ingest.applied = await countModifies(cloud.endpoints.dynamodb, streamArn, admin.projectId);
    const durations = await conductorDurations(bench.stateDir);
    printReport(
      'first sight: every conductor worker meets each guest (a cache miss costs an index query and a read)',
      ingest,
      total,
      rawDb,
      aroundOf(firstBefore, firstAfter),
      rawSqs1,
      rawSqs5,
      durations,
      bench.problems.slice(problemsBefore),
    );
    // The same again, now that the workers have met the guests: a deployment's steady state, where
    // a guest is read once per worker per hour (the cache's TTL) and each heartbeat is one write.
    // Three times, each with the raw rate measured around it: one run's ratio moved by 0.2 from one
    // run to the next on this machine (DynamoDB Local's pace drifts), so the goal is judged on
    // their median.
    let applied = ingest.applied;
    let seenDurations = durations.length;
    const { problems, stateDir } = bench;
    /** One more run of `signed`, with the raw rate around it, reported under `title`: its ratio. */
    const measured = async (title: string, signed: ReturnType<typeof signRounds>) => {
      const problemsNow = problems.length;
      const before = await rawAround(docs, items, ownItems, 'before');
      const run = await runIngest(
        sqs,
        queue.url,
        dlq?.url,
        docs,
        admin.projectId,
        signed.bodies,
        signed.final,
      );
      const after = await rawAround(docs, items, ownItems, 'after');
      const appliedNow = await countModifies(cloud.endpoints.dynamodb, streamArn, admin.projectId);
      run.applied = appliedNow - applied;
      applied = appliedNow;
      const allDurations = await conductorDurations(stateDir);
      const ratioNow = printReport(
        title,
        run,
        total,
        rawDb,
        aroundOf(before, after),
        rawSqs1,
        rawSqs5,
        allDurations.slice(seenDurations),
        problems.slice(problemsNow),
      );
      seenDurations = allDurations.length;
      ok &&= run.dlq === 0;
      return { run, ratio: ratioNow };
    };
    const ratios: number[] = [];
    let again: Ingest | undefined;
    for (let round = 1; round <= STEADY_ROUNDS; round++) {
      const steadyRun = await measured(
        `steady state ${round} of ${STEADY_ROUNDS}: the same guests again, ten more rounds`,
        signRounds(),
      );
      again = steadyRun.run;
      ratios.push(steadyRun.ratio);
    }
    // A run that did not finish is a miss, not a figure left out.
    const steady = percentile(
      ratios.map((r) => (Number.isFinite(r) ? r : 0)),
      50,
    );
    console.log(
      `\nsteady state, ${STEADY_ROUNDS} runs: ingest / the raw rate on its own table ${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')}; ` +
        `median ${steady.toFixed(2)}x      goal >= ${GOAL_TABLE_RATIO}x: ${verdict(steady >= GOAL_TABLE_RATIO)}`,
    );
    if (!again) throw new Error('no steady-state run');
    // The same heartbeats through the bare pipeline, right after: what SQS and the table cost together here.
    // A failure of its own is reported, not the run's: the ingest figures above stand.
    const pipeline = await rawPipeline(sqs, docs, signRounds().bodies, items, EVENT_SOURCE_POLLERS).catch(
      (err: unknown) => {
        console.log(`  the bare pipeline failed: ${err instanceof Error ? err.message : err}`);
        return Number.NaN;
      },
    );
    const steadyRate =
      (total - again.left) / ((Number.isNaN(again.doneMs) ? again.endMs : again.doneMs) / 1000);
    console.log(
      `\nthe bare pipeline, same run: ${EVENT_SOURCE_POLLERS} loops receiving ten, writing the raw conditional ` +
        `update of each (10 in flight), deleting the batch; no Lambda, no check: ${fixed(pipeline, 0)}/s; ` +
        `the last steady-state run's ingest is ${(steadyRate / pipeline).toFixed(2)}x of it`,
    );
    // The same again with heartbeats as agents send them: every fifth also keeps five metrics
    // samples (a put on the operations table), so DynamoDB Local, which applies writes one at a
    // time, takes 1.2 writes per heartbeat. Shown, not judged: DynamoDB bills and limits each
    // table on its own.
    const withMetrics = await measured(
      'as agents send them: the same guests again, every fifth heartbeat with five metrics samples (a second write, on the operations table)',
      signRounds(true),
    );
    console.log(
      `\nwith metrics samples: ingest / the raw rate on its own table ${Number.isFinite(withMetrics.ratio) ? `${withMetrics.ratio.toFixed(2)}x` : '-'} (not judged: 1.2 writes per heartbeat, on two tables)`,
    );
    // Slow is a figure, not a failure; a heartbeat in the dead-letter queue is one.
    ok &&= ingest.dlq === 0;
    if (!pinning.held()) {
      console.log('DynamoDB Local was restarted during the bench: the runs after that were NOT pinned');
      ok = false;
    }
  } catch (err) {
    console.error(`bench heartbeat failed: ${err instanceof Error ? err.message : err}`);
    ok = false;
  } finally {
    if (bench) await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    const clean = await cleanup.finish('bench heartbeat');
    console.log(
      clean ? '\nno process left running' : '\nSOME PROCESSES WERE LEFT RUNNING (killed, see above)',
    );
    ok = ok && clean;
  }
  return ok ? 0 : 1;
}

async function runIngest(
  sqs: SQSClient,
  url: string,
  dlqUrl: string | undefined,
  docs: Docs,
  projectId: string,
  bodies: string[],
  final: Map<string, number>,
): Promise<Ingest> {
  // The dead-letter queue is never drained: only what this run put there is this run's.
  const dlqBefore = dlqUrl ? await queueDepth(sqs, dlqUrl) : 0;
  const t0 = performance.now();
  let sendMs = Number.NaN;
  let sendError: unknown;
  const sending = sendAll(sqs, url, bodies, SENDERS).then(
    (ms) => {
      sendMs = ms;
    },
    (err: unknown) => {
      sendError = err ?? new Error('sending failed');
    },
  );
  const out: Ingest = {
    sendMs: Number.NaN,
    drainedMs: Number.NaN,
    doneMs: Number.NaN,
    endMs: Number.NaN,
    behind: final.size,
    left: bodies.length,
    dlq: 0,
    applied: Number.NaN,
  };
  let lastProgress = t0;
  for (;;) {
    await sleep(100);
    const now = performance.now();
    out.left = await queueDepth(sqs, url);
    if (now - lastProgress >= 10_000) {
      lastProgress = now;
      console.log(`    ${fixed((now - t0) / 1000, 0)} s: ${out.left} heartbeats still on the queue`);
    }
    if (sendError) throw sendError;
    if (now - t0 > INGEST_TIMEOUT_MS) {
      out.behind = await notYetFinal(docs, projectId, final);
      break;
    }
    const sentAll = !Number.isNaN(sendMs);
    if (sentAll && out.left === 0 && Number.isNaN(out.drainedMs)) out.drainedMs = now - t0;
    // DynamoDB is asked only once the queue is empty (every message deleted, so answered): a query
    // of the 500 items while the conductor writes takes from the very rate being measured.
    if (!(sentAll && out.left === 0)) continue;
    out.behind = await notYetFinal(docs, projectId, final);
    if (out.behind === 0) {
      out.doneMs = now - t0;
      break;
    }
  }
  out.endMs = performance.now() - t0;
  await sending;
  out.sendMs = sendMs;
  out.dlq = dlqUrl ? (await queueDepth(sqs, dlqUrl)) - dlqBefore : 0;
  if (!Number.isNaN(out.doneMs)) out.left = 0;
  return out;
}

function printReport(
  title: string,
  ingest: Ingest,
  total: number,
  rawDb: RawDynamo,
  /** The raw conditional update (the better of 10 and 50 in flight) on both tables, right before and right after this run. */
  around: Around,
  rawSqs1: number,
  rawSqs5: number,
  durations: number[],
  problems: string[],
): number {
  const perSecond = (n: number, ms: number) => (n / ms) * 1000;
  const finished = !Number.isNaN(ingest.doneMs);
  const elapsed = finished ? ingest.doneMs : ingest.endMs;
  // Taken off the queue and answered: applied, dropped as stale, or sent to the dead-letter queue.
  const handled = total - ingest.left;
  const ingestRate = perSecond(handled, elapsed);
  // Unfinished, a batch in flight may be applied but not yet deleted: stale is only known at the end.
  const stale = finished ? String(handled - ingest.dlq - ingest.applied) : '-';
  const note = finished ? '' : ` (NOT FINISHED after ${fixed(INGEST_TIMEOUT_MS / 1000, 0)} s)`;
  console.log(`\n${title}`);
  const w = [58, 10, 24];
  console.log(row([`conductor ingest${note}`, 'figure', `goal > ${GOAL_PER_SECOND} heartbeats/s`], w));
  console.log(row(['heartbeats sent', String(total), ''], w));
  console.log(row(['  taken off the queue and answered', String(handled), ''], w));
  console.log(row(['    applied (one MODIFY each on the table stream)', String(ingest.applied), ''], w));
  console.log(row(['    dropped as stale (a later round was there first)', stale, ''], w));
  console.log(row(['    in the dead-letter queue', String(ingest.dlq), ''], w));
  console.log(row(['  still on the queue at the end', String(ingest.left), ''], w));
  console.log(row(['instances not showing their last round at the end', String(ingest.behind), ''], w));
  console.log(row(['s from the first send until: all sent', fixed(ingest.sendMs / 1000), ''], w));
  console.log(row(['  the queue was empty', fixed(ingest.drainedMs / 1000), ''], w));
  console.log(row(['  every instance showed its last round', fixed(ingest.doneMs / 1000), ''], w));
  console.log(
    row(
      [
        'heartbeats ingested per second (answered / time)',
        fixed(ingestRate, 0),
        verdict(finished && ingestRate > GOAL_PER_SECOND),
      ],
      w,
    ),
  );
  console.log(
    row(
      ['heartbeats applied per second (applied / time)', fixed(perSecond(ingest.applied, elapsed), 0), ''],
      w,
    ),
  );
  console.log(
    row(['send rate of the senders alone (per second)', fixed(perSecond(total, ingest.sendMs), 0), ''], w),
  );
  // Issue 16: one table write per heartbeat should keep the conductor at the table's own pace.
  // Judged against the raw rate on its own table, measured on either side of this run (their mean);
  // the fresh twin's is shown beside it.
  const mean = ([before, after]: [number, number]) => (before + after) / 2;
  const ownRatio = ingestRate / mean(around.own);
  const twinRatio = ingestRate / mean(around.twin);
  const pair = ([before, after]: [number, number]) => `${fixed(before, 0)} / ${fixed(after, 0)}`;
  const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '-');
  console.log(
    row(
      [`raw conditional update, 10 or ${CONDUCTOR_IN_FLIGHT} in flight, just before / just after:`, '', ''],
      w,
    ),
  );
  console.log(row(["  on the instances table (another project's items)", pair(around.own), ''], w));
  console.log(row(['  on a fresh twin of it (the raw table)', pair(around.twin), ''], w));
  console.log(
    row(
      [
        "ingest / the mean on the instances table (the table's limit)",
        x(ownRatio),
        `goal >= ${GOAL_TABLE_RATIO}x: ${verdict(finished && ownRatio >= GOAL_TABLE_RATIO)}`,
      ],
      w,
    ),
  );
  console.log(row(['ingest / the mean on the twin', x(twinRatio), ''], w));
  if (durations.length) {
    console.log(
      row(
        [
          `conductor invocations: ${durations.length}, ${fixed(handled / durations.length, 1)} records each`,
          '',
          `p50 ${fixed(percentile(durations, 50), 0)} ms, max ${fixed(Math.max(...durations), 0)} ms`,
        ],
        w,
      ),
    );
  }
  if (problems.length) {
    const counts = new Map<string, number>();
    for (const p of problems) counts.set(p, (counts.get(p) ?? 0) + 1);
    console.log('the local cloud reported during the run:');
    for (const [line, n] of counts) console.log(`  ${n > 1 ? `${n}x ` : ''}${line.slice(0, 200)}`);
  }

  console.log('\nbaseline, same run, same servers');
  const b = [62, 10, 12];
  console.log(row(['', 'per second', 'ingest is'], b));
  const base = (label: string, rate: number) =>
    console.log(row([label, fixed(rate, 0), ratio(ingestRate, rate)], b));
  base('raw SQS send+receive+delete, 1 receive loop', rawSqs1);
  base('raw SQS send+receive+delete, 5 receive loops', rawSqs5);
  base('raw DynamoDB conditional update, 1 in flight', rawDb.sequential);
  base(
    `raw DynamoDB conditional update, 10 or ${CONDUCTOR_IN_FLIGHT} in flight (at the start)`,
    rawDb.concurrent,
  );
  base(`raw conditional update, 10 or ${CONDUCTOR_IN_FLIGHT} in flight, twin (around)`, mean(around.twin));
  base(
    `raw conditional update, 10 or ${CONDUCTOR_IN_FLIGHT} in flight, instances (around)`,
    mean(around.own),
  );
  base("the conductor's former 3 calls (query+get+today's update), 10 in flight", rawDb.conductor);
  console.log(`(ingest is = the conductor's ingest rate / the baseline's rate; ${load()})`);
  return finished ? ownRatio : Number.NaN;
}
