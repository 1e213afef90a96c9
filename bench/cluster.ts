// `npm run bench -- cluster [engines] [--mb N] [--writer-seconds S]`: issue 15's figures, per
// engine (redis: Redis Cluster; mysql: MariaDB Galera), on a local cloud of its own:
// - create: POST /clusters of 3 members to task NONE with every member ACTIVE, beside 3 single
//   instances of the same flavor created in parallel in the same run (the baseline: what a user
//   would get without the cluster's own work — meet and slots, or bootstrap and SST);
// - grow: N MB of data (500 by default) loaded into the cluster, then one member added: POST to
//   task NONE (Redis: slots rebalanced with their keys migrating live; Galera: the new member
//   joined by SST), with one writer committing one write at a time all along: its p50/p99 and
//   failed writes for `--writer-seconds` before the grow, and during it.
// Prints figures; nothing here is a pass/fail on time.
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import {
  type BenchCloud,
  Cleanup,
  call,
  fixed,
  type Login,
  load,
  login,
  percentile,
  ratio,
  row,
  sleep,
  startBenchCloud,
} from './cloud.ts';

type Datastore = 'redis' | 'mysql';
const ALL: Datastore[] = ['redis', 'mysql'];
/** ds1G: room for the data (Redis's maxmemory is 3/4 of it) with a third of it per member. */
const FLAVOR = '8';
const VOLUME_GB = 4;
const TIMEOUT_MS = 900_000;
const ROOT_PASSWORD = 'Bench-cluster-root-1';

interface Ip {
  address: string;
}
interface MemberView {
  id: string;
  status?: string;
  ip?: Ip[];
}
interface ClusterView {
  id: string;
  task: { name: string };
  instances: MemberView[];
}

const v1 = (login: Login, path: string) => `/v1.0/${login.projectId}${path}`;

async function api(bench: BenchCloud, login: Login, method: string, path: string, body?: object) {
  return call(bench.api, method, v1(login, path), login.token, body);
}

async function showCluster(bench: BenchCloud, login: Login, id: string): Promise<ClusterView | undefined> {
  const res = await api(bench, login, 'GET', `/clusters/${id}`);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`show cluster: ${res.status} ${res.text}`);
  return res.json?.cluster as ClusterView;
}

/** Polls until the cluster's task is NONE with every member ACTIVE; fails on a member in ERROR. */
async function clusterSettled(
  bench: BenchCloud,
  login: Login,
  id: string,
  members: number,
): Promise<ClusterView> {
  const deadline = Date.now() + TIMEOUT_MS;
  let last: ClusterView | undefined;
  while (Date.now() < deadline) {
    last = await showCluster(bench, login, id);
    if (!last) throw new Error(`cluster ${id} is gone`);
    const failed = last.instances.find((m) => m.status === 'ERROR');
    if (failed) throw new Error(`member ${failed.id} of cluster ${id} is in ERROR`);
    if (
      last.task.name === 'NONE' &&
      last.instances.length === members &&
      last.instances.every((m) => m.status === 'ACTIVE')
    )
      return last;
    await sleep(200);
  }
  throw new Error(`cluster ${id} did not settle: ${JSON.stringify(last)}`);
}

async function instanceActive(bench: BenchCloud, login: Login, id: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    const res = await api(bench, login, 'GET', `/instances/${id}`);
    const status = (res.json?.instance as { status?: string } | undefined)?.status;
    if (status === 'ACTIVE') return;
    if (status === 'ERROR') throw new Error(`instance ${id} is in ERROR`);
    await sleep(200);
  }
  throw new Error(`instance ${id} did not become ACTIVE`);
}

async function gone(bench: BenchCloud, login: Login, path: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    if ((await api(bench, login, 'GET', path)).status === 404) return;
    await sleep(500);
  }
  throw new Error(`${path} was not deleted`);
}

/** Room for 3 + 1 members and 3 singles at once. */
async function raiseQuota(bench: BenchCloud, admin: Login): Promise<void> {
  const quotas = { instances: 50, volumes: 500, ram: -1 };
  const res = await api(bench, admin, 'PUT', `/mgmt/quotas/${admin.projectId}`, { quotas });
  if (res.status !== 200) throw new Error(`quota: ${res.status} ${res.text}`);
}

const member = { flavorRef: FLAVOR, volume: { size: VOLUME_GB } };

async function createCluster(bench: BenchCloud, admin: Login, datastore: Datastore, name: string) {
  const t0 = performance.now();
  const res = await api(bench, admin, 'POST', '/clusters', {
    cluster: {
      name,
      datastore: { type: datastore, version: await versionOf(bench, admin, datastore) },
      instances: [member, member, member],
    },
  });
  if (res.status !== 200) throw new Error(`create cluster: ${res.status} ${res.text}`);
  const id = String((res.json?.cluster as { id?: string } | undefined)?.id);
  const view = await clusterSettled(bench, admin, id, 3);
  return { id, view, ms: performance.now() - t0 };
}

async function versionOf(bench: BenchCloud, admin: Login, datastore: Datastore): Promise<string> {
  const res = await api(bench, admin, 'GET', `/datastores/${datastore}`);
  const ds = res.json?.datastore as { default_version?: string; versions?: { id: string; name: string }[] };
  const version = ds.versions?.find((v) => v.id === ds.default_version) ?? ds.versions?.[0];
  if (!version) throw new Error(`no version of ${datastore}`);
  return version.name;
}

/** Three single instances of the same flavor and volume, created at once: POST to all ACTIVE. */
async function createSingles(bench: BenchCloud, admin: Login, datastore: Datastore): Promise<number> {
  const t0 = performance.now();
  const ids = await Promise.all(
    [1, 2, 3].map(async (i) => {
      const res = await api(bench, admin, 'POST', '/instances', {
        instance: { name: `bench-single-${datastore}-${i}`, ...member, datastore: { type: datastore } },
      });
      if (res.status !== 200) throw new Error(`create instance: ${res.status} ${res.text}`);
      return String((res.json?.instance as { id?: string } | undefined)?.id);
    }),
  );
  await Promise.all(ids.map((id) => instanceActive(bench, admin, id)));
  const ms = performance.now() - t0;
  await Promise.all(ids.map((id) => api(bench, admin, 'DELETE', `/instances/${id}`)));
  await Promise.all(ids.map((id) => gone(bench, admin, `/instances/${id}`)));
  return ms;
}

interface Client {
  write(n: number): Promise<void>;
  load(mb: number): Promise<void>;
  close(): Promise<void>;
}

async function caOf(bench: BenchCloud, admin: Login, instanceId: string): Promise<string> {
  const res = await api(bench, admin, 'GET', `/instances/${instanceId}/ssl`);
  return String((res.json?.ssl as { ca_certificate?: string } | undefined)?.ca_certificate);
}

const VALUE_KB = 64;

async function connect(
  bench: BenchCloud,
  admin: Login,
  datastore: Datastore,
  view: ClusterView,
): Promise<Client> {
  const first = view.instances[0];
  const address = first?.ip?.[0]?.address;
  if (!first || !address) throw new Error('the cluster shows no member address');
  const ca = await caOf(bench, admin, first.id);
  const value = Buffer.alloc(VALUE_KB * 1024, 'x').toString();
  if (datastore === 'redis') {
    const client = new Redis.Cluster([{ host: address, port: 6379 }], {
      redisOptions: { password: ROOT_PASSWORD, tls: { ca, rejectUnauthorized: true }, connectTimeout: 5_000 },
      slotsRefreshTimeout: 5_000,
    });
    client.on('error', () => {});
    return {
      write: async (n) => {
        await client.set(`w:${n}`, String(n));
      },
      load: async (mb) => {
        const keys = Math.ceil((mb * 1024) / VALUE_KB);
        for (let i = 0; i < keys; i += 64) {
          await Promise.all(
            Array.from({ length: Math.min(64, keys - i) }, (_, j) => client.set(`data:${i + j}`, value)),
          );
        }
      },
      close: async () => {
        client.disconnect();
      },
    };
  }
  const conn = await mysql.createConnection({
    host: address,
    port: 3306,
    user: 'root',
    password: ROOT_PASSWORD,
    ssl: { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined } as never,
  });
  await conn.query('CREATE DATABASE IF NOT EXISTS bench');
  await conn.query('CREATE TABLE IF NOT EXISTS bench.w (n INT PRIMARY KEY)');
  await conn.query('CREATE TABLE IF NOT EXISTS bench.data (n INT PRIMARY KEY, v LONGBLOB)');
  return {
    write: async (n) => {
      await conn.query('INSERT INTO bench.w VALUES (?)', [n]);
    },
    load: async (mb) => {
      const rows = Math.ceil((mb * 1024) / VALUE_KB);
      for (let i = 0; i < rows; i += 16) {
        const batch = Array.from({ length: Math.min(16, rows - i) }, (_, j) => [i + j, value]);
        await conn.query('INSERT INTO bench.data VALUES ?', [batch]);
      }
    },
    close: async () => {
      await conn.end();
    },
  };
}

/** One write at a time until `until` resolves (or for `ms`): each write's latency and the failures. */
async function writer(client: Client, start: number, until: Promise<unknown>) {
  const latencies: number[] = [];
  let failed = 0;
  let done = false;
  until.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  let n = start;
  while (!done) {
    const t0 = performance.now();
    try {
      await client.write(n++);
      latencies.push(performance.now() - t0);
    } catch {
      failed++;
      await sleep(50);
    }
  }
  return { latencies, failed, next: n };
}

interface Figures {
  createMs: number;
  singlesMs: number;
  loadMs: number;
  growMs: number;
  before: { latencies: number[]; failed: number };
  during: { latencies: number[]; failed: number };
}

async function measure(
  bench: BenchCloud,
  admin: Login,
  datastore: Datastore,
  mb: number,
  writerSeconds: number,
): Promise<Figures> {
  // The baseline first: the cluster's members then build on a machine as quiet as the singles did.
  const singlesMs = await createSingles(bench, admin, datastore);
  const { id, view, ms: createMs } = await createCluster(bench, admin, datastore, `bench-${datastore}`);
  try {
    const root = await api(bench, admin, 'POST', `/clusters/${id}/root`, { password: ROOT_PASSWORD });
    if (root.status !== 200) throw new Error(`cluster root: ${root.status} ${root.text}`);
    const client = await connect(bench, admin, datastore, view);
    try {
      const t0 = performance.now();
      await client.load(mb);
      const loadMs = performance.now() - t0;
      const before = await writer(client, 0, sleep(writerSeconds * 1000));
      const g0 = performance.now();
      const grown = (async () => {
        const res = await api(bench, admin, 'POST', `/clusters/${id}`, { grow: [member] });
        if (res.status !== 202) throw new Error(`grow: ${res.status} ${res.text}`);
        await clusterSettled(bench, admin, id, 4);
        return performance.now() - g0;
      })();
      const during = await writer(client, before.next, grown);
      return { createMs, singlesMs, loadMs, growMs: await grown, before, during };
    } finally {
      await client.close();
    }
  } finally {
    await api(bench, admin, 'DELETE', `/clusters/${id}`);
    await gone(bench, admin, `/clusters/${id}`).catch((err) => console.log(`  delete: ${err}`));
  }
}

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export async function run(args: string[]): Promise<number> {
  const first = args[0] && !args[0].startsWith('--') ? args[0] : undefined;
  const engines = (first && first !== 'all' ? first.split(',') : ALL) as Datastore[];
  const mb = option(args, '--mb', 500);
  const writerSeconds = option(args, '--writer-seconds', 15);
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  // A cluster client rejects commands it queued itself (a slots refresh) when a member's
  // connection closes mid-grow: said, never a crash that would leave the cloud running.
  process.on('unhandledRejection', (err) => console.log(`  (client) ${(err as Error).message}`));
  console.log(
    `bench cluster: per engine (${engines.join(', ')}), 3 members of flavor ${FLAVOR} (${VOLUME_GB} GB volumes) ` +
      `beside 3 singles in parallel; grow by one with ${mb} MB loaded, one writer (${writerSeconds} s before); node ${process.version}`,
  );
  const results = new Map<Datastore, Figures>();
  try {
    bench = await startBenchCloud(cleanup, 'cluster');
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    const admin = await login(bench.api, 'admin', 'admin');
    await raiseQuota(bench, admin);
    for (const datastore of engines) {
      try {
        const f = await measure(bench, admin, datastore, mb, writerSeconds);
        results.set(datastore, f);
        console.log(
          `  ${datastore}: create ${fixed(f.createMs / 1000)} s beside 3 singles ${fixed(f.singlesMs / 1000)} s; ` +
            `load ${mb} MB ${fixed(f.loadMs / 1000)} s; grow ${fixed(f.growMs / 1000)} s; ${load()}`,
        );
      } catch (err) {
        console.log(`  ${datastore}: FAILED: ${(err as Error).message}`);
      }
    }
  } finally {
    if (bench) await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    const clean = await cleanup.finish('bench cluster');
    if (!clean) console.log('SOME PROCESSES WERE LEFT RUNNING (killed, see above)');
  }
  const s = (ms: number) => `${fixed(ms / 1000)} s`;
  const ms = (x: number) => `${fixed(x, 1)} ms`;
  const w = [8, 14, 14, 8, 12, 12, 14, 14, 10, 10];
  console.log('');
  console.log(
    row(
      [
        'engine',
        'create (3)',
        '3 singles',
        'ratio',
        `load ${mb} MB`,
        'grow (+1)',
        'write p50/p99',
        'during grow',
        'failed',
        'writes',
      ],
      w,
    ),
  );
  for (const [datastore, f] of results) {
    console.log(
      row(
        [
          datastore,
          s(f.createMs),
          s(f.singlesMs),
          ratio(f.createMs, f.singlesMs),
          s(f.loadMs),
          s(f.growMs),
          `${ms(percentile(f.before.latencies, 50))}/${ms(percentile(f.before.latencies, 99))}`,
          `${ms(percentile(f.during.latencies, 50))}/${ms(percentile(f.during.latencies, 99))}`,
          `${f.before.failed}/${f.during.failed}`,
          String(f.during.latencies.length),
        ],
        w,
      ),
    );
  }
  return results.size === engines.length ? 0 : 1;
}
