// `npm run bench -- failover [engines] [rounds]`: automatic failover's figures (issue 12 #4), per
// engine, on a local cloud of its own, a set of a source and two replicas with failover automatic:
// - failover: the time from the source engine's death (SIGKILL) to the first write that commits
//   through the set's writer endpoint, a writer committing one row at a time all along; median of
//   `rounds` (default 5) failovers. After each, the dead old source is deleted and a new replica
//   is seeded from the new source, so each round starts from a set of three again;
// - seed: that new replica's create-to-HEALTHY time, beside a plain backup of the same source
//   (same data, same run);
// - switchover: promote of a replica under the same write load, POST to the set settled, and the
//   writer's outage (first failed to first committed write after it);
// - lag: under steady writes (one at a time), the time from a commit on the source to the row
//   being readable on a replica, p50/p99 of 200 writes.
// The failover expiry used is printed (TROVELESS_FAILOVER_EXPIRY_SECONDS, 5 s by default). Prints
// figures; nothing here is a pass/fail on time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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

type Datastore = 'mysql' | 'postgresql' | 'redis';
// Redis first: the engine the CI test fails over fully.
const ALL: Datastore[] = ['redis', 'postgresql', 'mysql'];
const USER = { name: 'benchfo', password: 'Bench-failover-1' };
const ROOT_PASSWORD = 'Bench-failover-root-1';
const EXPIRY_S = Number(process.env.TROVELESS_FAILOVER_EXPIRY_SECONDS ?? 5);
const TIMEOUT_MS = 300_000;

interface Endpoint {
  host: string;
  port: number;
  ca: string;
}

interface Session {
  write(n: number): Promise<void>;
  has(n: number): Promise<boolean>;
  close(): Promise<void>;
}

/** `writable`: the session may make the table (a replica refuses even CREATE ... IF NOT EXISTS). */
async function open(datastore: Datastore, at: Endpoint, writable = true): Promise<Session> {
  // The writer endpoint's certificate names the member, not the writer: the chain is verified.
  const ssl = { ca: at.ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  if (datastore === 'redis') {
    const r = new Redis({
      host: at.host,
      port: at.port,
      password: ROOT_PASSWORD,
      tls: ssl,
      lazyConnect: true,
      connectTimeout: 2_000,
      commandTimeout: 2_000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    r.on('error', () => {});
    await r.connect();
    return {
      write: async (n) => {
        await r.set(`row:${n}`, '1');
      },
      has: async (n) => (await r.get(`row:${n}`)) === '1',
      close: async () => r.disconnect(),
    };
  }
  if (datastore === 'mysql') {
    const c = await mysql.createConnection({
      host: at.host,
      port: at.port,
      ssl,
      user: USER.name,
      password: USER.password,
      database: 'benchdb',
      connectTimeout: 2_000,
    });
    c.on('error', () => {});
    if (writable) await c.query('CREATE TABLE IF NOT EXISTS t (n INT PRIMARY KEY)');
    return {
      write: async (n) => {
        await c.query('INSERT INTO t VALUES (?)', [n]);
      },
      has: async (n) => ((await c.query('SELECT n FROM t WHERE n = ?', [n]))[0] as unknown[]).length === 1,
      close: async () => c.destroy(),
    };
  }
  const c = new pg.Client({
    host: at.host,
    port: at.port,
    ssl,
    user: USER.name,
    password: USER.password,
    database: 'benchdb',
    connectionTimeoutMillis: 2_000,
    query_timeout: 5_000,
  });
  c.on('error', () => {});
  await c.connect();
  if (writable) await c.query('CREATE TABLE IF NOT EXISTS t (n int PRIMARY KEY)');
  return {
    write: async (n) => {
      await c.query('INSERT INTO t VALUES ($1)', [n]);
    },
    has: async (n) => (await c.query('SELECT n FROM t WHERE n = $1', [n])).rowCount === 1,
    close: async () => c.end().catch(() => {}),
  };
}

/** One row at a time through the writer endpoint, reconnecting after any error (a client's loop). */
class Writer {
  readonly ackedAt: number[] = [];
  readonly failedAt: number[] = [];
  private n = 1;
  private running = true;
  private readonly done: Promise<void>;

  constructor(datastore: Datastore, at: Endpoint) {
    this.done = (async () => {
      let s: Session | undefined;
      while (this.running) {
        try {
          s ??= await open(datastore, at);
          await s.write(this.n++);
          this.ackedAt.push(performance.now());
        } catch {
          this.failedAt.push(performance.now());
          await s?.close().catch(() => {});
          s = undefined;
          await sleep(50);
        }
      }
      await s?.close().catch(() => {});
    })();
  }

  /** When writes came back: the first commit after the first failure at or after `since`. */
  async outage(since: number, timeoutMs = TIMEOUT_MS): Promise<{ failed: number; resumed: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const failed = this.failedAt.find((t) => t >= since);
      const resumed = failed === undefined ? undefined : this.ackedAt.find((t) => t > failed);
      if (failed !== undefined && resumed !== undefined) return { failed, resumed };
      if (performance.now() > deadline) throw new Error('the writer did not come back');
      await sleep(20);
    }
  }

  async stop() {
    this.running = false;
    await this.done;
  }
}

function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle))
        pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids.filter((p) => p !== process.pid);
}

interface Figures {
  failoverMs: number[];
  seedMs: number[];
  backupMs: number[];
  switchoverMs: number;
  switchoverOutageMs: number;
  lagMs: number[];
}

async function measure(
  bench: BenchCloud,
  admin: Login,
  datastore: Datastore,
  rounds: number,
): Promise<Figures> {
  const base = `/v1.0/${admin.projectId}`;
  const api = (method: string, path: string, body?: object) =>
    call(bench.api, method, `${base}${path}`, admin.token, body);
  const view = async (id: string) =>
    (await api('GET', `/instances/${id}`)).json?.instance as Record<string, unknown>;
  /** What the set looked like at the last look: printed when a wait gives up. */
  let lastSeen = '';
  const until = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const v = await probe().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new Error(`${datastore}: ${what} did not happen; last seen: ${lastSeen}`);
      await sleep(100);
    }
  };
  const healthy = (id: string) =>
    until(`${id} healthy`, async () => {
      const v = await view(id);
      if (v?.status === 'ERROR') throw new Error(`${id} failed: ${JSON.stringify(v.fault)}`);
      return v?.status === 'ACTIVE' && v.operating_status === 'HEALTHY' ? v : undefined;
    });
  const ids = new Set<string>();
  /**
   * The set's one source, once every member follows it and none is busy. `fenced`: a dead old
   * source, stopped by the failover's fence, which shows SHUTDOWN once its heartbeat expires.
   */
  const settled = (not?: string, fenced?: string) =>
    until('the set to settle', async () => {
      const views = await Promise.all([...ids].filter((id) => id !== fenced).map(view));
      lastSeen = JSON.stringify(
        views.map((v) => [v.id, v.status, (v.replica_of as { id?: string } | undefined)?.id, v.fault]),
      );
      const sources = views.filter((v) => !v.replica_of);
      if (sources.length !== 1 || views.some((v) => v.status !== 'ACTIVE')) return undefined;
      const s = sources[0] as { id: string };
      return s.id !== not &&
        views.every((v) => v === sources[0] || (v.replica_of as { id: string }).id === s.id)
        ? s.id
        : undefined;
    });
  // Replicas of one source are made by one request (replica_count): two creates at once race
  // for the source's record, and the second is refused.
  const addReplicas = async (sourceId: string, count: number) => {
    const listed = async () =>
      (((await view(sourceId)).replicas as { id: string }[] | undefined) ?? []).map((r) => r.id);
    const before = new Set(await listed());
    const t = performance.now();
    const res = await api('POST', '/instances', {
      instance: { name: `bfo-${datastore}-r`, replica_of: sourceId, replica_count: count },
    });
    if (res.status !== 200) throw new Error(`replica: ${res.status} ${res.text}`);
    const made = (await listed()).filter((id) => !before.has(id));
    for (const id of made) ids.add(id);
    await Promise.all(made.map(healthy));
    const ms = performance.now() - t;
    if (datastore === 'redis')
      for (const id of made) await api('POST', `/instances/${id}/root`, { password: ROOT_PASSWORD });
    return ms;
  };
  const sql = datastore !== 'redis';
  const created = await api('POST', '/instances', {
    instance: {
      name: `bfo-${datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: datastore },
      replication: { failover: 'automatic' },
      ...(sql
        ? { databases: [{ name: 'benchdb' }], users: [{ ...USER, databases: [{ name: 'benchdb' }] }] }
        : {}),
    },
  });
  const sourceId = (created.json?.instance as { id?: string } | undefined)?.id;
  if (!sourceId) throw new Error(`create: ${created.status} ${created.text}`);
  ids.add(sourceId);
  const figures: Figures = {
    failoverMs: [],
    seedMs: [],
    backupMs: [],
    switchoverMs: Number.NaN,
    switchoverOutageMs: Number.NaN,
    lagMs: [],
  };
  let writer: Writer | undefined;
  try {
    await healthy(sourceId);
    if (!sql) await api('POST', `/instances/${sourceId}/root`, { password: ROOT_PASSWORD });
    await addReplicas(sourceId, 2);
    const w = ((await view(sourceId)).replication as { writer: { address: string; port: number } }).writer;
    const ssl = await api('GET', `/instances/${sourceId}/ssl`);
    const ca = String((ssl.json?.ssl as { ca_certificate?: string } | undefined)?.ca_certificate);
    writer = new Writer(datastore, { host: w.address, port: w.port, ca });
    await until('the first write', async () => (writer?.ackedAt.length ? true : undefined));

    // Lag: one write at a time on the writer's own connection, then poll a replica until it holds it.
    {
      const replicaId = [...ids].find((id) => id !== sourceId) as string;
      const rv = await view(replicaId);
      const addr = (rv.addresses as { address: string }[])[0]?.address as string;
      const port = { mysql: 3306, postgresql: 5432, redis: 6379 }[datastore];
      const onSource = await open(datastore, { host: w.address, port: w.port, ca });
      const onReplica = await open(datastore, { host: addr, port, ca }, false);
      try {
        for (let i = 0; i < 200; i++) {
          const n = 1_000_000 + i;
          await onSource.write(n);
          const t = performance.now();
          while (!(await onReplica.has(n)))
            if (performance.now() - t > 30_000) throw new Error('lag over 30 s');
          figures.lagMs.push(performance.now() - t);
        }
      } finally {
        await onSource.close();
        await onReplica.close();
      }
    }

    // Switchover under the writer's load.
    {
      const source = await settled();
      const candidate = [...ids].find((id) => id !== source) as string;
      const t = performance.now();
      const res = await api('POST', `/instances/${candidate}/action`, { promote_to_replica_source: {} });
      if (res.status !== 202) throw new Error(`promote: ${res.status} ${res.text}`);
      await settled(source);
      figures.switchoverMs = performance.now() - t;
      // A switchover may end without the writer seeing a failure at all: then its outage is 0.
      const o = await writer.outage(t, 15_000).catch(() => undefined);
      figures.switchoverOutageMs = o ? o.resumed - o.failed : 0;
    }

    for (let round = 0; round < rounds; round++) {
      const source = await settled();
      const serverId = String((await view(source)).server_id);
      const baseDir = join(bench.stateDir, 'compute', serverId);
      const agent = processesMentioning(join(baseDir, 'agent.json'));
      const engine = processesMentioning(baseDir).filter((p) => !agent.includes(p));
      const others = [...ids].filter((id) => id !== source);
      const t = performance.now();
      for (const pid of engine) process.kill(pid, 'SIGKILL');
      // Detection: the moment the control plane claims the set (a member shows EJECT), polled
      // beside the writer until it writes again; the rest of the outage is the eject's own steps.
      let detectedAt = Number.NaN;
      let outageOver = false;
      const detecting = (async () => {
        while (!outageOver && Number.isNaN(detectedAt)) {
          const views = await Promise.all(others.map((id) => view(id).catch(() => undefined)));
          if (views.some((v) => v?.status === 'EJECT')) detectedAt = performance.now();
          else await sleep(100);
        }
      })();
      const o = await writer.outage(t);
      outageOver = true;
      await detecting;
      figures.failoverMs.push(o.resumed - t);
      const next = await settled(source, source);
      console.log(
        `  ${datastore} round ${round + 1}: death → first write ${fixed((o.resumed - t) / 1000)} s ` +
          `(failover started after ${fixed((detectedAt - t) / 1000)} s); ${load()}`,
      );
      // The dead old source goes; a new replica of the new source takes its place (seed time),
      // beside a plain backup of the new source (the same data).
      await api('DELETE', `/instances/${source}`);
      await until('the old source to go', async () =>
        (await api('GET', `/instances/${source}`)).status === 404 ? true : undefined,
      );
      ids.delete(source);
      const tb = performance.now();
      const b = await api('POST', '/backups', {
        backup: { name: `bfo-${datastore}-${round}`, instance: next },
      });
      if (b.status !== 202) throw new Error(`backup: ${b.status} ${b.text}`);
      const backupId = (b.json?.backup as { id: string } | undefined)?.id as string;
      await until('the backup', async () => {
        const s = (await api('GET', `/backups/${backupId}`)).json?.backup as { status?: string };
        if (s?.status === 'FAILED') throw new Error('backup failed');
        return s?.status === 'COMPLETED' ? true : undefined;
      });
      figures.backupMs.push(performance.now() - tb);
      await api('DELETE', `/backups/${backupId}`);
      figures.seedMs.push(await addReplicas(next, 1));
    }
  } finally {
    await writer?.stop();
    const views = await Promise.all([...ids].map((id) => view(id).catch(() => undefined)));
    const replicas = [...ids].filter((_, i) => views[i]?.replica_of);
    for (const group of [replicas, [...ids].filter((id) => !replicas.includes(id))]) {
      await Promise.all(group.map((id) => api('DELETE', `/instances/${id}`)));
      for (const id of group)
        await until(`${id} gone`, async () =>
          (await api('GET', `/instances/${id}`)).status === 404 ? true : undefined,
        ).catch(() => undefined);
    }
  }
  return figures;
}

export async function run(args: string[]): Promise<number> {
  const engines = (args[0] && args[0] !== 'all' ? args[0].split(',') : ALL) as Datastore[];
  const rounds = Math.max(1, Number(args[1] ?? 5));
  const cleanup = new Cleanup();
  let bench: BenchCloud | undefined;
  console.log(
    `bench failover: per engine (${engines.join(', ')}), a source and two replicas with failover automatic ` +
      `(async); failover expiry ${EXPIRY_S} s (TROVELESS_FAILOVER_EXPIRY_SECONDS); ${rounds} failovers each; node ${process.version}`,
  );
  const results = new Map<Datastore, Figures>();
  try {
    bench = await startBenchCloud(cleanup, 'failover', {
      TROVELESS_FAILOVER_EXPIRY_SECONDS: String(EXPIRY_S),
    });
    console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
    const admin = await login(bench.api, 'admin', 'admin');
    for (const datastore of engines) {
      try {
        const f = await measure(bench, admin, datastore, rounds);
        results.set(datastore, f);
        // Each engine's figures as soon as it is done (a long run may be cut short).
        console.log(
          `  ${datastore}: failover median ${fixed(median(f.failoverMs) / 1000)} s of ${f.failoverMs.length}; ` +
            `switchover ${fixed(f.switchoverMs / 1000)} s (writer outage ${fixed(f.switchoverOutageMs / 1000)} s); ` +
            `seed ${fixed(median(f.seedMs) / 1000)} s beside backup ${fixed(median(f.backupMs) / 1000)} s; ` +
            `lag p50 ${fixed(percentile(f.lagMs, 50), 1)} ms p99 ${fixed(percentile(f.lagMs, 99), 1)} ms`,
        );
      } catch (err) {
        console.log(`  ${datastore}: FAILED: ${(err as Error).message}`);
      }
    }
  } finally {
    if (bench) await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    const clean = await cleanup.finish('bench failover');
    if (!clean) console.log('SOME PROCESSES WERE LEFT RUNNING (killed, see above)');
  }
  const s = (ms: number) => `${fixed(ms / 1000)} s`;
  const w = [10, 16, 12, 12, 12, 14, 10, 10];
  console.log('');
  console.log(
    row(
      [
        'engine',
        'failover median',
        'failover max',
        'switchover',
        'sw. outage',
        'seed | backup',
        'lag p50',
        'lag p99',
      ],
      w,
    ),
  );
  for (const [datastore, f] of results) {
    console.log(
      row(
        [
          datastore,
          `${s(median(f.failoverMs))} (${f.failoverMs.length})`,
          s(Math.max(...f.failoverMs)),
          s(f.switchoverMs),
          s(f.switchoverOutageMs),
          `${s(median(f.seedMs))} | ${s(median(f.backupMs))}`,
          `${fixed(percentile(f.lagMs, 50), 1)} ms`,
          `${fixed(percentile(f.lagMs, 99), 1)} ms`,
        ],
        w,
      ),
    );
  }
  return results.size === engines.length ? 0 : 1;
}
