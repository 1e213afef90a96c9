// `npm run bench -- api`: read latency of the HTTP API over 1,000 instances in one project: list
// (one page of 20) and show (a random id), set against serverless-offline's own floor (the
// version document at `GET /`) and the raw DynamoDB calls behind them; then list in projects of
// 10 to 10,000.
//
// Everything compared is measured interleaved (bench/interleaved.ts): one loop whose every round
// makes one floor request, one raw GetItem, one show, one raw Query, one list and one raw
// UpdateItem, in an order that changes from round to round, with the same warm-up; first
// sequentially, then with 8 clients each running such rounds. Measured in separate blocks, drift
// over the run (GC, DynamoDB Local's JIT, other processes' load) landed on one side of a ratio
// only, and raw calls made back to back skipped the idle pause a route's call comes after: the
// same code gave list 1.13× in one run and 1.70× in another.
//
// The floor is `GET /`: the front door, serverless-offline and the middleware chain every route
// runs (request id, headers, Trove's faults, the path check) around a handler that returns a
// constant; its Server-Timing shows the handler's part of it. The goals (issue 16): show ≤ 1.5 ×
// (floor + one GetItem) and list ≤ 1.5 × (floor + one Query), sequential p50s of the same loop.
// The raw calls are the route's own: GetItem by key, Query with Limit page + 1 (the extra item
// says whether a next page exists), and, as context, the rate limiter's conditional UpdateItem
// (with the bench's limit of a million a minute, one request in up to 100 writes it).
import { randomInt } from 'node:crypto';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { newGuestKey, wrapKey } from '../lib/guest/keys.ts';
import type { InstanceItem } from '../lib/instances/model.ts';
import { type Figures, printReport, type Scale } from './api-report.ts';
import {
  type BenchCloud,
  Cleanup,
  call,
  documentClient,
  dynamoClient,
  fixed,
  INSTANCES_TABLE,
  instanceItem,
  load,
  login,
  percentile,
  putItems,
  startBenchCloud,
} from './cloud.ts';
import { interleaved, type Outcome, type Probe, type Sample } from './interleaved.ts';

const ITEMS = 1000;
/** Projects of these sizes show list's flatness; the 1,000 one is the main project. */
const SIZES = [10, 100, 1000, 10_000];
const SCALE_ROUNDS = 200;
const WARMUP = 20;
const SEQUENTIAL = 400;
const CLIENTS = 8;
/** Rounds shared by the clients: each probe is called this many times in all. */
const CONCURRENT = 800;
const PAGE = 20;
const RATE_LIMITS_TABLE = 'troveless-local-rate-limits';
// Real Trove on this machine, from the brief: for context only.
const TROVE = { list: '≈ 170', show: '22-63' };

/** `name;dur=ms, ...` (lib/http/timing.ts), in ms by name. */
function serverTimings(header: string | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const [, name, ms] of (header ?? '').matchAll(/([\w-]+);dur=([\d.]+)/g))
    if (name) out.set(name, Number(ms));
  return out;
}

function figures(label: string, mode: string, samples: Sample[], reference = ''): Figures {
  const ms = samples.map((s) => s.ms);
  const phases = new Map<string, number[]>();
  for (const s of samples)
    for (const [name, v] of s.phases ?? []) phases.set(name, [...(phases.get(name) ?? []), v]);
  return {
    label,
    mode,
    n: ms.length,
    p50: percentile(ms, 50),
    p90: percentile(ms, 90),
    p99: percentile(ms, 99),
    errors: samples.filter((s) => !s.ok).length,
    reference,
    phases,
  };
}

export async function run(_args: string[]): Promise<number> {
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  let ok = true;
  console.log(
    `bench api: ${ITEMS} instances in one project; floor, show, list and their raw table calls interleaved: ` +
      `${SEQUENTIAL} sequential rounds, then ${CONCURRENT} rounds shared by ${CLIENTS} clients, each after ` +
      `${WARMUP} warm-up rounds; list in projects of ${SIZES.join(', ')}; node ${process.version}`,
  );
  try {
    bench = await startBenchCloud(cleanup, 'api', { TROVELESS_SERVER_TIMING: 'true' });
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    const { api, cloud } = bench;
    const admin = await login(api, 'admin', 'admin');
    // wrapKey uses the deployment's guest key-encryption key, as the API does.
    process.env.TROVELESS_GUEST_KEK = cloud.env.TROVELESS_GUEST_KEK;
    const wrapped = await wrapKey(newGuestKey());
    const docs = documentClient(dynamoClient(cloud));
    // The main project is the admin's own; the others are project ids only an admin may read.
    const projects = new Map<number, string>(
      SIZES.map((n) => [n, n === ITEMS ? admin.projectId : `bench-project-${n}`]),
    );
    const all: InstanceItem[] = [];
    const items: InstanceItem[] = [];
    for (const [n, project] of projects) {
      const made = Array.from({ length: n }, (_, i) => instanceItem(project, i, wrapped));
      all.push(...made);
      if (project === admin.projectId) items.push(...made);
    }
    const t = performance.now();
    await putItems(docs, all);
    console.log(
      `  ${all.length} items written with BatchWrite in ${fixed((performance.now() - t) / 1000)} s`,
    );
    const ids = items.map((i) => i.id);

    // The routes answer what they should before anything is timed.
    const listPath = `/v1.0/${admin.projectId}/instances?limit=${PAGE}`;
    const first = await call(api, 'GET', listPath, admin.token);
    const page = first.json?.instances as unknown[] | undefined;
    if (first.status !== 200 || page?.length !== PAGE || !first.json?.links)
      throw new Error(
        `list answered ${first.status} with ${page?.length} instances: ${first.text.slice(0, 300)}`,
      );
    const shown = await call(api, 'GET', `/v1.0/${admin.projectId}/instances/${ids[0]}`, admin.token);
    if (shown.status !== 200) throw new Error(`show answered ${shown.status}: ${shown.text.slice(0, 300)}`);

    const randomId = () => ids[randomInt(ids.length)] ?? '';
    /** One request; its Server-Timing phases, and `outside`: the request less its handler. */
    const http =
      (path: () => string, token?: string): Probe =>
      async () => {
        const t0 = performance.now();
        const res = await fetch(`${api}${path()}`, {
          headers: { accept: 'application/json', ...(token ? { 'x-auth-token': token } : {}) },
        });
        await res.arrayBuffer();
        const ms = performance.now() - t0;
        const phases = serverTimings(res.headers.get('server-timing'));
        const handler = phases.get('handler');
        if (handler !== undefined) phases.set('outside', ms - handler);
        return { ok: res.status === 200, phases };
      };
    const table =
      (send: () => Promise<unknown>): Probe =>
      async (): Promise<Outcome> => {
        await send();
        return { ok: true };
      };
    const query = (project: string) =>
      table(() =>
        docs.send(
          new QueryCommand({
            TableName: INSTANCES_TABLE,
            KeyConditionExpression: 'project_id = :p',
            ExpressionAttributeValues: { ':p': project },
            Limit: PAGE + 1,
          }),
        ),
      );
    // Each round calls every one of these once, in an order of its own (bench/interleaved.ts).
    const probes = {
      floor: http(() => '/'),
      get: table(() =>
        docs.send(
          new GetCommand({
            TableName: INSTANCES_TABLE,
            Key: { project_id: admin.projectId, id: randomId() },
          }),
        ),
      ),
      show: http(() => `/v1.0/${admin.projectId}/instances/${randomId()}`, admin.token),
      query: query(admin.projectId),
      list: http(() => listPath, admin.token),
      // A bucket of its own, written as the limiter writes one (lib/limits/store.ts).
      update: table(() =>
        docs.send(
          new UpdateCommand({
            TableName: RATE_LIMITS_TABLE,
            Key: { project_id: 'bench-raw', limit: 'GET .* 1000000/MINUTE' },
            UpdateExpression: 'SET drains_at = :next, expires_at = :expires',
            ConditionExpression: 'attribute_not_exists(drains_at) OR drains_at <= :now',
            ExpressionAttributeValues: {
              ':next': Date.now(),
              ':expires': Math.ceil(Date.now() / 1000) + 120,
              ':now': Date.now() + 60_000,
            },
          }),
        ),
      ),
    };
    const labels = {
      floor: ['GET / (version document)', ''],
      get: ['DynamoDB GetItem (raw)', ''],
      show: ['GET instances/{random id}', TROVE.show],
      query: [`DynamoDB Query, Limit ${PAGE + 1} (raw)`, ''],
      list: [`GET instances?limit=${PAGE}`, TROVE.list],
      update: ['DynamoDB UpdateItem (raw, context)', ''],
    } as const;
    const loop = async (mode: string, rounds: number, clients: number) => {
      const { samples, wallMs } = await interleaved(probes, { rounds, warmup: WARMUP, clients });
      const out = new Map<keyof typeof probes, Figures>();
      for (const [key, [label, reference]] of Object.entries(labels) as [
        keyof typeof probes,
        readonly [string, string],
      ][])
        out.set(key, figures(label, mode, samples[key], reference));
      console.log(
        `  ${mode}: ${rounds} rounds in ${fixed(wallMs / 1000, 1)} s; p50 floor ${fixed(out.get('floor')?.p50 ?? Number.NaN, 1)}, ` +
          `show ${fixed(out.get('show')?.p50 ?? Number.NaN, 1)}, list ${fixed(out.get('list')?.p50 ?? Number.NaN, 1)} ms; ${load()}`,
      );
      return out;
    };
    const sequential = await loop('sequential', SEQUENTIAL, 1);
    const concurrent = await loop(`${CLIENTS} clients`, CONCURRENT, CLIENTS);

    // List's flatness: the first page, a page from the middle of the project (marker) and the
    // first page's raw Query, for every size, interleaved as above.
    const scaleProbes: Record<string, Probe> = {};
    for (const [size, project] of projects) {
      const sorted = all.filter((i) => i.project_id === project).map((i) => i.id);
      sorted.sort();
      const marker = sorted[Math.floor(sorted.length / 2)] ?? '';
      const base = `/v1.0/${project}/instances?limit=${PAGE}`;
      scaleProbes[`first ${size}`] = http(() => base, admin.token);
      scaleProbes[`middle ${size}`] = http(() => `${base}&marker=${marker}`, admin.token);
      scaleProbes[`query ${size}`] = query(project);
    }
    const scaled = await interleaved(scaleProbes, { rounds: SCALE_ROUNDS, warmup: WARMUP, clients: 1 });
    const scale: Scale[] = SIZES.map((size) => {
      const label = `list, ${size} instances`;
      const of = (k: string) => scaled.samples[`${k} ${size}`] ?? [];
      return {
        size,
        first: figures(label, 'first page', of('first')),
        middle: figures(label, 'middle page', of('middle')),
        query: figures('Query', 'raw', of('query')),
      };
    });

    const timed = [
      ...sequential.values(),
      ...concurrent.values(),
      ...scale.flatMap((s) => [s.first, s.middle]),
    ];
    const errors = timed.reduce((s, f) => s + f.errors, 0);
    const goals = printReport(sequential, concurrent, scale, {
      errors,
      scaleRounds: SCALE_ROUNDS,
      page: PAGE,
      trove: TROVE,
    });
    ok = errors === 0;
    if (!goals)
      console.log('(a goal was missed: see above; the bench still exits 0 when every request answered)');
  } catch (err) {
    console.error(`bench api failed: ${err instanceof Error ? err.message : err}`);
    ok = false;
  } finally {
    if (bench) await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    const clean = await cleanup.finish('bench api');
    console.log(
      clean ? '\nno process left running' : '\nSOME PROCESSES WERE LEFT RUNNING (killed, see above)',
    );
    ok = ok && clean;
  }
  return ok ? 0 : 1;
}
