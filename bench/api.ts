// `npm run bench -- api`: read latency and throughput of the HTTP API over 1,000 instances in one
// project: list (one page of 20) and show (a random id), sequential and with 8 concurrent clients,
// set against serverless-offline's own floor (the version document at `GET /`) and the raw
// DynamoDB reads behind them, all in the same run.
import { randomInt } from 'node:crypto';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { newGuestKey, wrapKey } from '../lib/guest/keys.ts';
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
  startBenchCloud,
  timedPool,
} from './cloud.ts';

const ITEMS = 1000;
const WARMUP = 20;
const SEQUENTIAL = 300;
const CLIENTS = 8;
const CONCURRENT = 800;
const PAGE = 20;
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
}

export async function run(_args: string[]): Promise<number> {
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  let ok = true;
  console.log(
    `bench api: ${ITEMS} instances in one project; ${SEQUENTIAL} sequential and ${CONCURRENT} requests from ` +
      `${CLIENTS} concurrent clients per route, after ${WARMUP} warm-up requests; node ${process.version}`,
  );
  try {
    bench = await startBenchCloud(cleanup, 'api');
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    const { api, cloud } = bench;
    const admin = await login(api, 'admin', 'admin');
    // wrapKey uses the deployment's guest key-encryption key, as the API does.
    process.env.TROVELESS_GUEST_KEK = cloud.env.TROVELESS_GUEST_KEK;
    const wrapped = await wrapKey(newGuestKey());
    const docs = documentClient(dynamoClient(cloud));
    const items = Array.from({ length: ITEMS }, (_, n) => instanceItem(admin.projectId, n, wrapped));
    let t = performance.now();
    await putItems(docs, items);
    console.log(`  ${ITEMS} items written with BatchWrite in ${fixed((performance.now() - t) / 1000)} s`);
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

    const measure = async (
      route: (typeof routes)[number],
      mode: string,
      n: number,
      clients: number,
    ): Promise<Figures> => {
      let errors = 0;
      const once = async () => {
        const res = await fetch(`${api}${route.path()}`, {
          headers: { accept: 'application/json', ...(route.token ? { 'x-auth-token': route.token } : {}) },
        });
        await res.arrayBuffer();
        if (res.status !== 200) errors++;
      };
      // Warm-up: sequential ones, and as many concurrent as clients so each worker exists.
      await timedPool(WARMUP, 1, once);
      if (clients > 1) await timedPool(clients * 4, clients, once);
      errors = 0;
      const { ms, wallMs } = await timedPool(n, clients, once);
      const fig = {
        label: route.label,
        mode,
        n,
        p50: percentile(ms, 50),
        p99: percentile(ms, 99),
        rps: (n / wallMs) * 1000,
        errors,
        reference: route.reference,
      };
      console.log(
        `  ${route.label} ${mode}: p50 ${fixed(fig.p50, 1)} ms, p99 ${fixed(fig.p99, 1)} ms, ` +
          `${fixed(fig.rps, 0)} req/s${errors ? `, ${errors} ERRORS` : ''}`,
      );
      return fig;
    };

    const sequential = new Map<string, Figures>();
    const concurrent = new Map<string, Figures>();
    for (const r of routes) sequential.set(r.key, await measure(r, 'sequential', SEQUENTIAL, 1));
    for (const r of routes)
      concurrent.set(r.key, await measure(r, `${CLIENTS} clients`, CONCURRENT, CLIENTS));

    // The DynamoDB reads behind list and show, straight from this process: what the data layer costs.
    const raw = async (label: string, fn: () => Promise<unknown>): Promise<Figures> => {
      await timedPool(WARMUP, 1, async () => void (await fn()));
      const { ms, wallMs } = await timedPool(SEQUENTIAL, 1, async () => void (await fn()));
      return {
        label,
        mode: 'sequential',
        n: SEQUENTIAL,
        p50: percentile(ms, 50),
        p99: percentile(ms, 99),
        rps: (SEQUENTIAL / wallMs) * 1000,
        errors: 0,
        reference: '',
      };
    };
    t = performance.now();
    const rawQuery = await raw(`DynamoDB Query, Limit ${PAGE}`, () =>
      docs.send(
        new QueryCommand({
          TableName: INSTANCES_TABLE,
          KeyConditionExpression: 'project_id = :p',
          ExpressionAttributeValues: { ':p': admin.projectId },
          Limit: PAGE,
        }),
      ),
    );
    const rawGet = await raw('DynamoDB GetItem', () =>
      docs.send(
        new GetCommand({ TableName: INSTANCES_TABLE, Key: { project_id: admin.projectId, id: randomId() } }),
      ),
    );

    const errors = [...sequential.values(), ...concurrent.values()].reduce((s, f) => s + f.errors, 0);
    ok = errors === 0;
    printReport(sequential, concurrent, [rawQuery, rawGet], errors);
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

function printReport(
  sequential: Map<string, Figures>,
  concurrent: Map<string, Figures>,
  raw: Figures[],
  errors: number,
): void {
  const w = [34, 12, 5, 8, 8, 8, 16];
  const line = (f: Figures) =>
    console.log(
      row([f.label, f.mode, String(f.n), fixed(f.p50, 1), fixed(f.p99, 1), fixed(f.rps, 0), f.reference], w),
    );
  console.log('');
  console.log(row(['route', 'mode', 'n', 'p50 ms', 'p99 ms', 'req/s', 'real Trove p50'], w));
  for (const f of sequential.values()) line(f);
  for (const f of concurrent.values()) line(f);
  console.log('baseline: the DynamoDB reads behind list and show, straight from the bench process');
  for (const f of raw) line(f);

  const fl = (m: Map<string, Figures>, k: string) => m.get(k) ?? ({} as Figures);
  console.log('\nratios (same run)');
  const r = [50, 12, 12];
  console.log(row(['', 'sequential', `${CLIENTS} clients`], r));
  for (const key of ['list', 'show'] as const) {
    const name = key === 'list' ? 'list' : 'show';
    console.log(
      row(
        [
          `${name} p50 / floor p50`,
          ratio(fl(sequential, key).p50, fl(sequential, 'floor').p50),
          ratio(fl(concurrent, key).p50, fl(concurrent, 'floor').p50),
        ],
        r,
      ),
    );
    console.log(
      row(
        [
          `${name} p50 - floor p50 (ms, the handler's own work)`,
          fixed(fl(sequential, key).p50 - fl(sequential, 'floor').p50, 1),
          fixed(fl(concurrent, key).p50 - fl(concurrent, 'floor').p50, 1),
        ],
        r,
      ),
    );
    console.log(
      row(
        [
          `floor req/s / ${name} req/s`,
          ratio(fl(sequential, 'floor').rps, fl(sequential, key).rps),
          ratio(fl(concurrent, 'floor').rps, fl(concurrent, key).rps),
        ],
        r,
      ),
    );
  }
  const [query, get] = raw;
  if (query && get) {
    console.log(
      row(['list p50 / raw DynamoDB Query p50', ratio(fl(sequential, 'list').p50, query.p50), ''], r),
    );
    console.log(
      row(['show p50 / raw DynamoDB GetItem p50', ratio(fl(sequential, 'show').p50, get.p50), ''], r),
    );
  }
  console.log(
    `\nreal Trove on this machine (brief): list p50 ${TROVE.list} ms, show p50 ${TROVE.show} ms; ` +
      `Troveless sequential: list ${fixed(fl(sequential, 'list').p50, 1)} ms, show ${fixed(fl(sequential, 'show').p50, 1)} ms`,
  );
  console.log(errors ? `${errors} requests did not answer 200` : 'every timed request answered 200');
  console.log(`(${load()})`);
}
