// `npm run bench -- api`: read latency and throughput of the HTTP API over 1,000 instances in one
// project: list (one page of 20) and show (a random id), sequential and with 8 concurrent clients,
// set against serverless-offline's own floor (the version document at `GET /`) and the raw
// DynamoDB calls behind them, all in the same run; then list in projects of 10 to 10,000.
//
// The floor is `GET /`: the front door, serverless-offline and the middleware chain every route
// runs (request id, headers, Trove's faults, the path check) around a handler that returns a
// constant; its Server-Timing shows the handler's part of it. The goals (issue 16): show ≤ 1.5 ×
// (floor + one GetItem) and list ≤ 1.5 × (floor + one Query), p50s of the same run. The raw calls
// are the route's own: GetItem by key, Query with Limit page + 1 (the extra item says whether a
// next page exists), and the rate limiter's conditional UpdateItem for what a request counts
// (with the bench's limit of a million a minute, one request in up to 100 writes it).
//
// Two more raw calls are context, not goals: the Query with the FilterExpression list used to
// send (what an expression costs DynamoDB Local), and the GetItem after a pause of 3 ms, as a
// route's call comes after the floor's work rather than straight after another call (a table
// call after a pause is slower on this machine than one in a tight loop, whichever process).
import { randomInt } from 'node:crypto';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { newGuestKey, wrapKey } from '../lib/guest/keys.ts';
import type { InstanceItem } from '../lib/instances/model.ts';
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
  ratio,
  row,
  sleep,
  startBenchCloud,
  timedPool,
  verdict,
} from './cloud.ts';

const ITEMS = 1000;
/** Projects of these sizes show list's flatness; the 1,000 one is the main project. */
const SIZES = [10, 100, 1000, 10_000];
const SCALE_REQUESTS = 200;
const GOAL = 1.5;
const WARMUP = 20;
const SEQUENTIAL = 300;
const CLIENTS = 8;
const CONCURRENT = 800;
const PAGE = 20;
const RATE_LIMITS_TABLE = 'troveless-local-rate-limits';
// Real Trove on this machine, from the brief: for context only.
const TROVE = { list: '≈ 170', show: '22-63' };

interface Figures {
  label: string;
  mode: string;
  n: number;
  p50: number;
  p99: number;
  rps: number;
  errors: number;
  reference: string;
  /** Per phase the handler reported (Server-Timing), and `outside`: each request less its handler. */
  phases?: Map<string, number[]>;
}

/** `name;dur=ms, ...` (lib/http/timing.ts), in ms by name. */
function serverTimings(header: string | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const [, name, ms] of (header ?? '').matchAll(/([\w-]+);dur=([\d.]+)/g))
    if (name) out.set(name, Number(ms));
  return out;
}

function figures(label: string, mode: string, ms: number[], wallMs: number, errors = 0): Figures {
  return {
    label,
    mode,
    n: ms.length,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    rps: (ms.length / wallMs) * 1000,
    errors,
    reference: '',
  };
}

export async function run(_args: string[]): Promise<number> {
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  let ok = true;
  console.log(
    `bench api: ${ITEMS} instances in one project; ${SEQUENTIAL} sequential and ${CONCURRENT} requests from ` +
      `${CLIENTS} concurrent clients per route, after ${WARMUP} warm-up requests; list in projects of ` +
      `${SIZES.join(', ')}; node ${process.version}`,
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
    let t = performance.now();
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
    const routes = [
      { key: 'floor', label: 'GET / (version document)', path: () => '/', token: undefined, reference: '' },
      {
        key: 'list',
        label: `GET instances?limit=${PAGE}`,
        path: () => listPath,
        token: admin.token,
        reference: TROVE.list,
      },
      {
        key: 'show',
        label: 'GET instances/{random id}',
        path: () => `/v1.0/${admin.projectId}/instances/${randomId()}`,
        token: admin.token,
        reference: TROVE.show,
      },
    ] as const;

    /** Timed requests of one path; each request's Server-Timing phases are kept. */
    const measure = async (
      route: { label: string; path: () => string; token?: string; reference: string },
      mode: string,
      n: number,
      clients: number,
      quiet = false,
    ): Promise<Figures> => {
      let errors = 0;
      let phases = new Map<string, number[]>();
      const once = async () => {
        const t0 = performance.now();
        const res = await fetch(`${api}${route.path()}`, {
          headers: { accept: 'application/json', ...(route.token ? { 'x-auth-token': route.token } : {}) },
        });
        await res.arrayBuffer();
        const ms = performance.now() - t0;
        if (res.status !== 200) errors++;
        const timings = serverTimings(res.headers.get('server-timing'));
        const handler = timings.get('handler');
        if (handler !== undefined) timings.set('outside', ms - handler);
        for (const [name, v] of timings) phases.set(name, [...(phases.get(name) ?? []), v]);
      };
      // Warm-up: sequential ones, and as many concurrent as clients so each worker exists.
      await timedPool(WARMUP, 1, once);
      if (clients > 1) await timedPool(clients * 4, clients, once);
      errors = 0;
      phases = new Map();
      const { ms, wallMs } = await timedPool(n, clients, once);
      const fig = { ...figures(route.label, mode, ms, wallMs, errors), reference: route.reference, phases };
      if (!quiet)
        console.log(
          `  ${route.label} ${mode}: p50 ${fixed(fig.p50, 1)} ms, p99 ${fixed(fig.p99, 1)} ms, ` +
            `${fixed(fig.rps, 0)} req/s${errors ? `, ${errors} ERRORS` : ''}`,
        );
      return fig;
    };

    // The DynamoDB calls behind list and show, straight from this process: what the data layer costs.
    const raw = async (label: string, fn: () => Promise<unknown>): Promise<Figures> => {
      await timedPool(WARMUP, 1, async () => void (await fn()));
      const { ms, wallMs } = await timedPool(SEQUENTIAL, 1, async () => void (await fn()));
      return figures(label, 'sequential', ms, wallMs);
    };
    const rawCalls = async () => {
      const query = await raw(`DynamoDB Query, Limit ${PAGE + 1}`, () =>
        docs.send(
          new QueryCommand({
            TableName: INSTANCES_TABLE,
            KeyConditionExpression: 'project_id = :p',
            ExpressionAttributeValues: { ':p': admin.projectId },
            Limit: PAGE + 1,
          }),
        ),
      );
      const get = await raw('DynamoDB GetItem', () =>
        docs.send(
          new GetCommand({
            TableName: INSTANCES_TABLE,
            Key: { project_id: admin.projectId, id: randomId() },
          }),
        ),
      );
      // A bucket of its own, written as the limiter writes one (lib/limits/store.ts).
      const update = await raw('DynamoDB UpdateItem (conditional)', () =>
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
      );
      const filtered = await raw(`DynamoDB Query, Limit ${PAGE + 1}, filtered`, () =>
        docs.send(
          new QueryCommand({
            TableName: INSTANCES_TABLE,
            KeyConditionExpression: 'project_id = :p',
            ExpressionAttributeValues: { ':p': admin.projectId },
            FilterExpression: 'attribute_not_exists(cluster_id)',
            Limit: PAGE + 1,
          }),
        ),
      );
      // Only the call is timed, not the pause.
      const paused: number[] = [];
      const pausedWall = performance.now();
      for (let i = 0; i < WARMUP + SEQUENTIAL; i++) {
        await sleep(3);
        const t0 = performance.now();
        await docs.send(
          new GetCommand({
            TableName: INSTANCES_TABLE,
            Key: { project_id: admin.projectId, id: randomId() },
          }),
        );
        if (i >= WARMUP) paused.push(performance.now() - t0);
      }
      const afterPause = figures(
        'DynamoDB GetItem after 3 ms',
        'paused',
        paused,
        performance.now() - pausedWall,
      );
      return { query, get, update, filtered, afterPause };
    };

    t = performance.now();
    const before = await rawCalls();
    const sequential = new Map<string, Figures>();
    const concurrent = new Map<string, Figures>();
    for (const r of routes) sequential.set(r.key, await measure(r, 'sequential', SEQUENTIAL, 1));
    const after = await rawCalls();
    for (const r of routes)
      concurrent.set(r.key, await measure(r, `${CLIENTS} clients`, CONCURRENT, CLIENTS));

    // List's flatness: the first page, and a page from the middle of the project (marker).
    const scale: Scale[] = [];
    for (const [size, project] of projects) {
      const sorted = all.filter((i) => i.project_id === project).map((i) => i.id);
      sorted.sort();
      const marker = sorted[Math.floor(sorted.length / 2)] ?? '';
      const base = `/v1.0/${project}/instances?limit=${PAGE}`;
      const label = `list, ${size} instances`;
      const first = await measure(
        { label, path: () => base, token: admin.token, reference: '' },
        'first page',
        SCALE_REQUESTS,
        1,
        true,
      );
      const middle = await measure(
        { label, path: () => `${base}&marker=${marker}`, token: admin.token, reference: '' },
        'middle page',
        SCALE_REQUESTS,
        1,
        true,
      );
      // The table's own: the same first page's Query, from this process.
      const { ms, wallMs } = await timedPool(SCALE_REQUESTS, 1, async () => {
        await docs.send(
          new QueryCommand({
            TableName: INSTANCES_TABLE,
            KeyConditionExpression: 'project_id = :p',
            ExpressionAttributeValues: { ':p': project },
            Limit: PAGE + 1,
          }),
        );
      });
      scale.push({ size, first, middle, query: figures('Query', 'raw', ms, wallMs) });
    }

    const timed = [
      ...sequential.values(),
      ...concurrent.values(),
      ...scale.flatMap((s) => [s.first, s.middle]),
    ];
    const errors = timed.reduce((s, f) => s + f.errors, 0);
    const goals = printReport(sequential, concurrent, [before, after], scale, errors);
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

interface Scale {
  size: number;
  first: Figures;
  middle: Figures;
  query: Figures;
}

interface RawCalls {
  query: Figures;
  get: Figures;
  update: Figures;
  /** Context only: the Query with a FilterExpression, and GetItem after a pause. */
  filtered: Figures;
  afterPause: Figures;
}

/** Prints every table; true when both goals were met. */
function printReport(
  sequential: Map<string, Figures>,
  concurrent: Map<string, Figures>,
  raws: RawCalls[],
  scale: Scale[],
  errors: number,
): boolean {
  const w = [38, 12, 5, 8, 8, 8, 16];
  const line = (f: Figures) =>
    console.log(
      row([f.label, f.mode, String(f.n), fixed(f.p50, 1), fixed(f.p99, 1), fixed(f.rps, 0), f.reference], w),
    );
  console.log('');
  console.log(row(['route', 'mode', 'n', 'p50 ms', 'p99 ms', 'req/s', 'real Trove p50'], w));
  for (const f of sequential.values()) line(f);
  for (const f of concurrent.values()) line(f);
  console.log('baseline: the DynamoDB calls behind list and show, straight from the bench process,');
  console.log('before and after the sequential routes');
  for (const r of raws) for (const f of [r.query, r.get, r.update, r.filtered, r.afterPause]) line(f);

  // Where each request's time went, from the handler's Server-Timing: token (verify + revocation),
  // limits (the rate limiter's write), route (table read + view), get (show's GetItem alone, as
  // the function sees it), query (list's Query alone), handler (all of the function), outside (the
  // request less the handler: client, front door, serverless-offline), and connections: how many
  // the function opened while serving, all the timed requests together (a count, not ms; 0 when
  // keep-alive holds and the client outlives the request).
  const names = ['token', 'limits', 'route', 'get', 'query', 'handler', 'outside', 'connections'];
  const p = [38, 12, ...names.map(() => 8)];
  console.log(
    '\nwhere the time goes: p50 ms of each phase (the handler’s Server-Timing; connections: a total)',
  );
  console.log(row(['route', 'mode', ...names], p));
  for (const f of [...sequential.values(), ...concurrent.values()])
    console.log(
      row(
        [
          f.label,
          f.mode,
          ...names.map((n) => {
            const xs = f.phases?.get(n);
            if (!xs?.length) return '-';
            return n === 'connections' ? String(xs.reduce((a, b) => a + b, 0)) : fixed(percentile(xs, 50), 2);
          }),
        ],
        p,
      ),
    );

  const fl = (m: Map<string, Figures>, k: string) => m.get(k) ?? ({} as Figures);
  const rawP50 = (k: keyof RawCalls) => raws.reduce((s, r) => s + r[k].p50, 0) / raws.length;
  const floor = fl(sequential, 'floor').p50;
  const get = rawP50('get');
  const query = rawP50('query');
  console.log('\ngoals (same run; sequential p50s; raw calls: the mean of their two runs)');
  const g = [58, 10, 10, 8, 8];
  console.log(row(['', 'measured', 'target', 'ratio', ''], g));
  const goal = (name: string, measured: number, table: number, tableName: string) => {
    const target = GOAL * (floor + table);
    const met = measured <= target;
    console.log(
      row(
        [
          `${name} ≤ ${GOAL} × (floor ${fixed(floor, 1)} + ${tableName} ${fixed(table, 1)})`,
          `${fixed(measured, 1)} ms`,
          `${fixed(target, 1)} ms`,
          `${fixed(measured / (floor + table), 2)}x`,
          verdict(met),
        ],
        g,
      ),
    );
    return met;
  };
  const showMet = goal('show p50', fl(sequential, 'show').p50, get, 'GetItem');
  const listMet = goal('list p50', fl(sequential, 'list').p50, query, 'Query');

  console.log(`\nlist latency by project size (limit ${PAGE}, ${SCALE_REQUESTS} sequential requests each)`);
  console.log("(raw Query: the first page's Query from the bench process, what DynamoDB Local adds)");
  const s = [22, 10, 10, 10, 10, 10];
  console.log(
    row(['instances in project', 'first p50', 'first p99', 'middle p50', 'middle p99', 'raw Query'], s),
  );
  for (const { size, first, middle, query } of scale)
    console.log(
      row(
        [
          size.toLocaleString('en'),
          fixed(first.p50, 1),
          fixed(first.p99, 1),
          fixed(middle.p50, 1),
          fixed(middle.p99, 1),
          fixed(query.p50, 1),
        ],
        s,
      ),
    );
  const firsts = scale.map((x) => x.first.p50);
  const smallest = scale[0]?.first.p50 ?? Number.NaN;
  const largest = scale[scale.length - 1]?.first.p50 ?? Number.NaN;
  console.log(
    `largest / smallest project, first page p50: ${ratio(largest, smallest)} ` +
      `(spread of first-page p50s ${fixed(Math.max(...firsts) - Math.min(...firsts), 1)} ms)`,
  );

  console.log('\nratios (same run)');
  const r = [50, 12, 12];
  console.log(row(['', 'sequential', `${CLIENTS} clients`], r));
  for (const key of ['list', 'show'] as const) {
    console.log(
      row(
        [
          `${key} p50 / floor p50`,
          ratio(fl(sequential, key).p50, fl(sequential, 'floor').p50),
          ratio(fl(concurrent, key).p50, fl(concurrent, 'floor').p50),
        ],
        r,
      ),
    );
    console.log(
      row(
        [
          `${key} p50 - floor p50 (ms, the handler's own work)`,
          fixed(fl(sequential, key).p50 - fl(sequential, 'floor').p50, 1),
          fixed(fl(concurrent, key).p50 - fl(concurrent, 'floor').p50, 1),
        ],
        r,
      ),
    );
    console.log(
      row(
        [
          `floor req/s / ${key} req/s`,
          ratio(fl(sequential, 'floor').rps, fl(sequential, key).rps),
          ratio(fl(concurrent, 'floor').rps, fl(concurrent, key).rps),
        ],
        r,
      ),
    );
  }
  console.log(
    `\nreal Trove on this machine (brief): list p50 ${TROVE.list} ms, show p50 ${TROVE.show} ms; ` +
      `Troveless sequential: list ${fixed(fl(sequential, 'list').p50, 1)} ms, show ${fixed(fl(sequential, 'show').p50, 1)} ms`,
  );
  console.log(errors ? `${errors} requests did not answer 200` : 'every timed request answered 200');
  console.log(`(${load()})`);
  return showMet && listMet;
}
