// `npm run bench -- resize`: per engine, how long Trove's resize flavor (512 MB -> 1 GB -> 512 MB)
// and resize volume (1 -> 2 GB, online) take from POST to ACTIVE/HEALTHY again, and what a writer
// writing all along sees of the volume resize: failed writes, and its write latency during the
// resize against before it. Prints figures; nothing here is a pass/fail on time.
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import {
  type BenchCloud,
  Cleanup,
  call,
  fixed,
  type Login,
  load,
  login,
  median,
  percentile,
  row,
  sleep,
  startBenchCloud,
} from './cloud.ts';

const USER = { name: 'benchuser', password: 'Bench-pass-1' };
const POLL_MS = 100;
const TIMEOUT_MS = 180_000;
const BEFORE_MS = 3_000;

type Datastore = 'mysql' | 'postgresql' | 'redis';
const ENGINES: Datastore[] = ['mysql', 'postgresql', 'redis'];

interface Endpoint {
  host: string;
  port: number;
  ca: string;
  password?: string;
}

/** One write, repeated by the writer: over TLS verified against the instance's CA, as a client would. */
async function writerFor(
  datastore: Datastore,
  at: Endpoint,
): Promise<{ write(): Promise<void>; close(): Promise<void> }> {
  if (datastore === 'mysql') {
    const c = await mysql.createConnection({
      host: at.host,
      port: at.port,
      user: USER.name,
      password: USER.password,
      database: 'benchdb',
      ssl: { ca: at.ca, rejectUnauthorized: true },
    });
    await c.query('CREATE TABLE IF NOT EXISTS w (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))');
    return { write: () => c.query("INSERT INTO w (v) VALUES ('x')").then(() => {}), close: () => c.end() };
  }
  if (datastore === 'postgresql') {
    const c = new pg.Client({
      host: at.host,
      port: at.port,
      user: USER.name,
      password: USER.password,
      database: 'benchdb',
      ssl: { ca: at.ca, rejectUnauthorized: true, servername: undefined },
    });
    c.on('error', () => {});
    await c.connect();
    await c.query('CREATE TABLE IF NOT EXISTS w (k serial PRIMARY KEY, v text)');
    return { write: () => c.query("INSERT INTO w (v) VALUES ('x')").then(() => {}), close: () => c.end() };
  }
  const r = new Redis({
    host: at.host,
    port: at.port,
    password: at.password,
    tls: { ca: at.ca, rejectUnauthorized: true },
    maxRetriesPerRequest: 1,
  });
  r.on('error', () => {});
  let n = 0;
  return {
    write: () => r.set(`w:${n++}`, 'x').then(() => {}),
    close: async () => {
      r.disconnect();
    },
  };
}

async function waitFor(
  bench: BenchCloud,
  admin: Login,
  id: string,
  done: (v: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const res = await call(bench.api, 'GET', `/v1.0/${admin.projectId}/instances/${id}`, admin.token);
    const view = res.json?.instance as Record<string, unknown> | undefined;
    if (view && done(view)) return view;
    if (view?.status === 'ERROR') throw new Error(`instance ${id} failed: ${JSON.stringify(view.fault)}`);
    if (Date.now() > deadline) throw new Error(`instance ${id}: ${res.text}`);
    await sleep(POLL_MS);
  }
}

const healthy = (v: Record<string, unknown>) => v.status === 'ACTIVE' && v.operating_status === 'HEALTHY';

interface Figures {
  flavorUpMs: number;
  flavorDownMs: number;
  volumeMs: number;
  writes: { before: number[]; during: number[]; failed: number; slowedMs: number };
}

async function measure(bench: BenchCloud, admin: Login, datastore: Datastore): Promise<Figures> {
  const base = `/v1.0/${admin.projectId}/instances`;
  const sql = datastore !== 'redis';
  const created = await call(bench.api, 'POST', base, admin.token, {
    instance: {
      name: `bench-resize-${datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: datastore },
      ...(sql
        ? { databases: [{ name: 'benchdb' }], users: [{ ...USER, databases: [{ name: 'benchdb' }] }] }
        : {}),
    },
  });
  const id = (created.json?.instance as { id?: string } | undefined)?.id;
  if (!id) throw new Error(`create ${datastore}: ${created.status} ${created.text}`);
  try {
    const ready = await waitFor(bench, admin, id, healthy);
    const resize = async (body: object, done: (v: Record<string, unknown>) => boolean) => {
      const t = performance.now();
      const res = await call(bench.api, 'POST', `${base}/${id}/action`, admin.token, { resize: body });
      if (res.status !== 202) throw new Error(`resize ${JSON.stringify(body)}: ${res.status} ${res.text}`);
      const view = await waitFor(bench, admin, id, (v) => healthy(v) && done(v));
      if (view.fault) throw new Error(`resize ${JSON.stringify(body)} failed: ${JSON.stringify(view.fault)}`);
      return performance.now() - t;
    };
    const flavor = (v: Record<string, unknown>) => (v.flavor as { id: string }).id;
    const flavorUpMs = await resize({ flavorRef: '8' }, (v) => flavor(v) === '8');
    const flavorDownMs = await resize({ flavorRef: '7' }, (v) => flavor(v) === '7');

    const address = (ready.addresses as { address: string; port?: number }[])[0];
    const ssl = await call(bench.api, 'GET', `${base}/${id}/ssl`, admin.token);
    const at: Endpoint = {
      host: address?.address ?? '',
      port: address?.port ?? { mysql: 3306, postgresql: 5432, redis: 6379 }[datastore],
      ca: String((ssl.json?.ssl as { ca_certificate?: string } | undefined)?.ca_certificate ?? ''),
    };
    if (!sql) {
      const root = await call(bench.api, 'POST', `${base}/${id}/root`, admin.token);
      at.password = (root.json?.user as { password?: string } | undefined)?.password;
    }
    const writer = await writerFor(datastore, at);
    const writes = { before: [] as number[], during: [] as number[], failed: 0, slowedMs: 0 };
    // An object, so that the loop reads each change made from outside it.
    const state: { phase: 'before' | 'during' | 'done' } = { phase: 'before' };
    const loop = (async () => {
      while (state.phase !== 'done') {
        const into = state.phase === 'before' ? writes.before : writes.during;
        const t = performance.now();
        await writer.write().catch(() => {
          writes.failed++;
        });
        into.push(performance.now() - t);
      }
    })();
    await sleep(BEFORE_MS);
    state.phase = 'during';
    let volumeMs = Number.NaN;
    try {
      volumeMs = await resize({ volume: { size: 2 } }, (v) => (v.volume as { size: number }).size === 2);
    } finally {
      state.phase = 'done';
      await loop;
      await writer.close();
    }
    // Slowed: the time spent in writes slower than the slowest write before the resize.
    const slowest = Math.max(...writes.before);
    writes.slowedMs = writes.during.filter((ms) => ms > slowest).reduce((a, b) => a + b, 0);
    return { flavorUpMs, flavorDownMs, volumeMs, writes };
  } finally {
    await call(bench.api, 'DELETE', `${base}/${id}`, admin.token);
    // Gone before the next engine's instance: one guest at a time on the machine.
    const deadline = Date.now() + TIMEOUT_MS;
    while (Date.now() < deadline) {
      if ((await call(bench.api, 'GET', `${base}/${id}`, admin.token)).status === 404) break;
      await sleep(POLL_MS * 5);
    }
  }
}

export async function run(): Promise<number> {
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  console.log(
    'bench resize: per engine, one instance (flavor 7, 512 MB, volume 1 GB): resize flavor to 8 (1 GB) and back, ' +
      `then resize volume to 2 GB while a writer writes one row at a time; node ${process.version}`,
  );
  const results = new Map<Datastore, Figures>();
  try {
    bench = await startBenchCloud(cleanup, 'resize');
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    const admin = await login(bench.api, 'admin', 'admin');
    for (const datastore of ENGINES) {
      const f = await measure(bench, admin, datastore);
      results.set(datastore, f);
      console.log(`  ${datastore}: done; ${load()}`);
    }
  } finally {
    if (bench) await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    const clean = await cleanup.finish('bench resize');
    if (!clean) console.log('SOME PROCESSES WERE LEFT RUNNING (killed, see above)');
  }
  const s = (ms: number) => `${fixed(ms / 1000)} s`;
  const w = [10, 12, 12, 12, 8, 12, 12, 12, 12, 10];
  console.log('');
  console.log(
    row(
      [
        'engine',
        'flavor up',
        'flavor down',
        'volume',
        'writes',
        'failed',
        'p50 before',
        'max before',
        'max during',
        'slowed',
      ],
      w,
    ),
  );
  for (const [datastore, f] of results) {
    const { before, during } = f.writes;
    console.log(
      row(
        [
          datastore,
          s(f.flavorUpMs),
          s(f.flavorDownMs),
          s(f.volumeMs),
          String(before.length + during.length),
          String(f.writes.failed),
          `${fixed(median(before), 1)} ms`,
          `${fixed(Math.max(...before), 1)} ms`,
          `${fixed(Math.max(...during), 1)} ms`,
          `${fixed(f.writes.slowedMs)} ms`,
        ],
        w,
      ),
    );
    console.log(`${''.padEnd(12)}p99 during ${fixed(percentile(during, 99), 1)} ms`);
  }
  const failed = [...results.values()].reduce((n, f) => n + f.writes.failed, 0);
  console.log(
    failed
      ? `\n${failed} WRITES FAILED during a volume resize`
      : '\nno write failed during any volume resize',
  );
  return failed ? 1 : 0;
}
