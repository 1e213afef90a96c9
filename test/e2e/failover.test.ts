import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { IN_ORDER, limiter, raiseQuota, SIDE_BY_SIDE } from './concurrency.ts';
import { call, type Login, login } from './helpers.ts';
import { type Endpoint, instanceSsl } from './instance-access.ts';
import {
  createInstance,
  endpointOf,
  healthy,
  type InstanceView,
  showInstance,
  waitForInstance,
} from './instance-helpers.ts';
import {
  baseDirOf,
  deleteAndCheck,
  guestProcesses,
  serverIdOf,
  serverStatus,
  signal,
  startServer,
} from './leftovers.ts';
import { openRowSession, type RowSession } from './row-sessions.ts';

// Automatic failover on real engines (issue 12 #4). A set of a source and two replicas with
// `"replication": {"failover": "automatic"}`; a writer commits numbered rows (keys) through the
// set's writer endpoint in a loop, reconnecting whenever its connection breaks:
// - the source's agent alone is killed: its engine still serves and its replicas still reach it,
//   so NO failover happens (the writer never stops); the agent is started again;
// - the source's engine is killed (SIGKILL): the set fails over to a replica, the old source is
//   fenced (its server stopped), the writer resumes through the same writer endpoint, the set
//   shows the event; in sync mode every row the writer saw committed is on the new source; the
//   old source's server is started again (os-start) and it rejoins as a replica of the new one;
// - the new source's engine is frozen (SIGSTOP): the set fails over again; after SIGCONT the
//   frozen source takes no write (its server was stopped by the fence).
// CI runs Redis only (its old source rejoins by a full sync); MariaDB and PostgreSQL in sync mode
// are opt-in: TROVELESS_FAILOVER_ENGINES=all (or a list: mysql,postgresql,redis). The failover
// expiry is the cloud's TROVELESS_FAILOVER_EXPIRY_SECONDS (5 s by default).

const USER = { name: 'fo_app', password: 'Failover-app-pass-1' };
const ROOT_PASSWORD = 'Failover-root-pass-1';
const EXPIRY_S = Number(process.env.TROVELESS_FAILOVER_EXPIRY_SECONDS ?? 5);

interface Engine {
  datastore: string;
  mode: 'async' | 'sync';
  body: Record<string, unknown>;
  open(at: Endpoint, viaWriter: boolean): Promise<RowSession>;
}

const tlsFor = (at: Endpoint, viaWriter: boolean) => ({
  ca: at.ca,
  rejectUnauthorized: true,
  // Through the writer the chain is verified, not the name (a member's certificate names its own address).
  ...(viaWriter ? { checkServerIdentity: () => undefined } : {}),
});

const ENGINES: Engine[] = [
  {
    datastore: 'redis',
    mode: 'async',
    body: {},
    async open(at, viaWriter) {
      const r = new Redis({
        host: at.host,
        port: at.port,
        password: ROOT_PASSWORD,
        tls: tlsFor(at, viaWriter),
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
          await r.set(`row:${n}`, String(n));
        },
        rows: async () => (await r.keys('row:*')).map((k) => Number(k.slice(4))),
        close: async () => r.disconnect(),
      };
    },
  },
  {
    datastore: 'mysql',
    mode: 'sync',
    body: { databases: [{ name: 'fodb' }], users: [{ ...USER, databases: [{ name: 'fodb' }] }] },
    open: (at, viaWriter) =>
      openRowSession('mysql', at, {
        user: USER,
        database: 'fodb',
        ssl: tlsFor(at, viaWriter),
        // The writer's session makes the table.
        create: viaWriter,
        connectTimeoutMs: 2_000,
      }),
  },
  {
    datastore: 'postgresql',
    mode: 'sync',
    body: { databases: [{ name: 'fodb' }], users: [{ ...USER, databases: [{ name: 'fodb' }] }] },
    open: (at, viaWriter) =>
      openRowSession('postgresql', at, {
        user: USER,
        database: 'fodb',
        ssl: tlsFor(at, viaWriter),
        create: viaWriter,
        connectTimeoutMs: 2_000,
        queryTimeoutMs: 5_000,
      }),
  },
];

const wanted = (process.env.TROVELESS_FAILOVER_ENGINES ?? 'redis').trim();
const RUN = ENGINES.filter((e) => wanted === 'all' || wanted.split(',').includes(e.datastore));

/**
 * The client every test of a set shares: it commits n = 1, 2, 3... through the writer endpoint,
 * one at a time, and on any error drops its connection and opens a new one (what a client does
 * after a failover: no change of configuration).
 */
class WriterLoop {
  readonly acked: number[] = [];
  readonly ackedAt: number[] = [];
  readonly failedAt: number[] = [];
  lastError = '';
  private next = 1;
  private running = true;
  private done: Promise<void>;

  constructor(
    private readonly engine: Engine,
    private readonly at: Endpoint,
  ) {
    this.done = this.loop();
  }

  private async loop() {
    let session: RowSession | undefined;
    while (this.running) {
      try {
        session ??= await this.engine.open(this.at, true);
        const n = this.next;
        await session.write(n);
        this.next++;
        this.acked.push(n);
        this.ackedAt.push(Date.now());
      } catch (err) {
        this.failedAt.push(Date.now());
        this.lastError = (err as Error).message;
        // A failed write may or may not have committed: the next attempt takes a new number.
        this.next++;
        await session?.close().catch(() => {});
        session = undefined;
        // Pace the reconnect attempts (not a wait for a condition: the loop is the client).
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await session?.close().catch(() => {});
  }

  /** Resolves once a write committed after `since` (ms). */
  resumedAfter(since: number, timeoutMs = 90_000) {
    return waitUntil(
      'a write through the writer endpoint to commit',
      async () => {
        const i = this.ackedAt.findIndex((t) => t > since);
        if (i < 0 && this.lastError) throw new Error(this.lastError);
        return i >= 0 ? this.ackedAt[i] : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  /** The first commit after the first failed write since `since`: when writes came back after an outage. */
  async resumedAfterOutage(since: number, timeoutMs = 120_000) {
    const failed = await waitUntil(
      'a write through the writer endpoint to fail',
      async () => this.failedAt.find((t) => t >= since),
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    return this.resumedAfter(failed, timeoutMs);
  }

  async stop() {
    this.running = false;
    await this.done;
  }
}

/**
 * Where a member's engine listens, with the CA to verify it. Not instance-access's endpointFor:
 * for Redis that enables root, which would give this member a password of its own.
 */
async function memberAt(who: Login, view: InstanceView): Promise<Endpoint> {
  return { ...endpointOf(view), ca: (await instanceSsl(who, view)).ca_certificate, password: ROOT_PASSWORD };
}

/**
 * CI's one engine runs beside the fault-injection runs below (each set is its own, and both mostly
 * wait on expiries); the opt-in engines in sync mode run one after another, as before.
 */
const BESIDE_SOAK = RUN.length === 1 ? SIDE_BY_SIDE : IN_ORDER;

describe.each(RUN)(
  'automatic failover: $datastore ($mode)',
  { ...BESIDE_SOAK, timeout: 360_000 },
  (engine) => {
    let admin: Login;
    const ids: string[] = [];
    const servers = new Map<string, string>();
    let writerAt: Endpoint;
    let writer: WriterLoop;
    const api = (method: string, path: string, body?: object) =>
      call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
    const viewOf = async (id: string) => (await showInstance(admin, id)).json?.instance as InstanceView;
    /** A failed-over source started again, once it follows the set as a healthy replica. */
    const rejoinedAsReplica = (id: string, what: string) =>
      waitUntil(
        `${what} to rejoin as a replica`,
        async () => {
          const v = await viewOf(id);
          const r = v.replication as { role?: string; running?: boolean };
          return v.operating_status === 'HEALTHY' && r.role === 'replica' && r.running ? v : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
    /** The member that is the set's source now, once every member agrees on it and none is busy. */
    const settledSource = (notId?: string, timeoutMs = 120_000) =>
      waitUntil(
        'the set to settle on one source',
        async () => {
          const views = await Promise.all(ids.map(viewOf));
          const sources = views.filter((v) => !v.replica_of);
          if (sources.length !== 1 || views.some((v) => v.status !== 'ACTIVE')) return undefined;
          const source = sources[0] as InstanceView;
          if (source.id === notId) return undefined;
          const following = views.filter(
            (v) => (v.replica_of as { id?: string } | undefined)?.id === source.id,
          );
          return following.length === ids.length - 1 ? source : undefined;
        },
        { timeoutMs, intervalMs: 500 },
      );

    beforeAll(async () => {
      admin = await login('admin', 'admin');
      const source = await createInstance(admin, {
        name: `fo-${engine.datastore}`,
        flavorRef: '7',
        volume: { size: 1 },
        datastore: { type: engine.datastore },
        replication: { failover: 'automatic', ...(engine.mode === 'sync' ? { mode: 'sync' } : {}) },
        ...engine.body,
      });
      ids.push(source.id);
      await waitForInstance(admin, source.id, healthy, 240_000);
      const res = await api('POST', '/instances', {
        instance: { name: `fo-${engine.datastore}-r`, replica_of: source.id, replica_count: 2 },
      });
      expect(res.status, res.text).toBe(200);
      const replicaIds = ((await viewOf(source.id)).replicas as { id: string }[]).map((r) => r.id);
      ids.push(...replicaIds);
      await Promise.all(replicaIds.map((id) => waitForInstance(admin, id, healthy, 300_000)));
      for (const id of ids) servers.set(id, String(await serverIdOf(id)));
      // Redis: one root password on every member, so a client through the writer needs no change.
      if (engine.datastore === 'redis')
        for (const id of ids)
          expect((await api('POST', `/instances/${id}/root`, { password: ROOT_PASSWORD })).status).toBe(200);
      const view = await viewOf(source.id);
      const w = (view.replication as { writer: { address: string; port: number } }).writer;
      writerAt = { ...(await memberAt(admin, view)), host: w.address, port: w.port };
      writer = new WriterLoop(engine, writerAt);
      await writer.resumedAfter(0, 30_000);
    }, 600_000);

    afterAll(async () => {
      await writer?.stop();
      // Replicas first: a source with replicas cannot be deleted.
      const views = await Promise.all(ids.map((id) => viewOf(id).catch(() => undefined)));
      const replicas = ids.filter((_, i) => views[i]?.replica_of);
      const sources = ids.filter((id) => !replicas.includes(id));
      await Promise.all(replicas.map((id) => deleteAndCheck(admin, id)));
      await Promise.all(sources.map((id) => deleteAndCheck(admin, id)));
    }, 600_000);

    describe('in order', IN_ORDER, () => {
      it('shows the setting on every member, changes it by PUT, and refuses a bad value with 400', async () => {
        for (const id of ids) expect((await viewOf(id)).replication).toMatchObject({ failover: 'automatic' });
        const bad = await api('PUT', `/instances/${ids[1]}`, {
          instance: { replication: { failover: 'sometimes' } },
        });
        expect(bad.status).toBe(400);
        expect(bad.json).toMatchObject({ badRequest: { code: 400 } });
        const manual = await api('PUT', `/instances/${ids[1]}`, {
          instance: { replication: { failover: 'manual' } },
        });
        expect(manual.status).toBe(202);
        for (const id of ids) expect((await viewOf(id)).replication).toMatchObject({ failover: 'manual' });
        const auto = await api('PUT', `/instances/${ids[2]}`, {
          instance: { replication: { failover: 'automatic' } },
        });
        expect(auto.status).toBe(202);
        for (const id of ids) expect((await viewOf(id)).replication).toMatchObject({ failover: 'automatic' });
        // Every replica probes the source and says it answers.
        await waitUntil(
          'the replicas to report that the source answers',
          async () => {
            const views = await Promise.all(ids.slice(1).map(viewOf));
            return views.every(
              (v) => (v.replication as { source_reachable?: boolean }).source_reachable === true,
            )
              ? true
              : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 500 },
        );
      });

      it("does not fail over when only the source's agent dies (its engine still serves)", async () => {
        const source = await settledSource();
        const serverId = servers.get(source.id) as string;
        const { agent } = guestProcesses(baseDirOf(serverId));
        expect(signal(agent, 'SIGKILL')).toBeGreaterThan(0);
        const killedAt = Date.now();
        // Three expiries of watching: the set keeps its source and the writer keeps committing.
        const watchUntil = killedAt + 3 * EXPIRY_S * 1000 + 5_000;
        await waitUntil(
          'three failover expiries to pass without a failover',
          async () => {
            const views = await Promise.all(ids.map(viewOf));
            for (const v of views) expect(v.status, `${v.id} ${JSON.stringify(v.fault)}`).toBe('ACTIVE');
            expect((await viewOf(source.id)).replica_of).toBeUndefined();
            return Date.now() > watchUntil ? true : undefined;
          },
          { timeoutMs: watchUntil - Date.now() + 10_000, intervalMs: 1000 },
        );
        const before = writer.acked.length;
        await writer.resumedAfter(Date.now(), 10_000);
        expect(writer.acked.length).toBeGreaterThan(before);
        expect((await viewOf(source.id)).replication).not.toHaveProperty('events');
        // The agent comes back beside its engine (which never stopped).
        await startServer(serverId);
        await waitForInstance(admin, source.id, healthy, 60_000);
      });

      it("fails over when the source's engine is killed; the old source is fenced and rejoins as a replica", async () => {
        const source = await settledSource();
        const serverId = servers.get(source.id) as string;
        const { engine: enginePids } = guestProcesses(baseDirOf(serverId));
        const ackedBefore = writer.acked.length;
        const killedAt = Date.now();
        expect(signal(enginePids, 'SIGKILL')).toBeGreaterThan(0);
        const resumed = await writer.resumedAfterOutage(killedAt);
        console.log(
          `[failover ${engine.datastore}] death → first write through the writer: ${((resumed - killedAt) / 1000).toFixed(1)} s (expiry ${EXPIRY_S} s)`,
        );
        const next = await settledSource(source.id);
        // The event every member shows, and the fence: the old source's server was stopped.
        for (const id of ids) {
          const events = (await viewOf(id)).replication as {
            events?: Record<string, unknown>[];
            term?: number;
          };
          expect(events.events?.[0]).toMatchObject({
            event: 'failover',
            old_source: source.id,
            new_source: next.id,
          });
        }
        expect(await serverStatus(serverId)).toBe('SHUTDOWN');
        expect(guestProcesses(baseDirOf(serverId)).engine).toEqual([]);
        const old = await viewOf(source.id);
        expect(old.replica_of).toMatchObject({ id: next.id });

        // Durability: in sync mode every write the client saw committed is on the new source.
        const nextAt = await memberAt(admin, next);
        const onNext = await engine.open(nextAt, false);
        try {
          const rows = new Set(await onNext.rows());
          const lost = writer.acked.slice(0, ackedBefore).filter((n) => !rows.has(n));
          if (engine.mode === 'sync') expect(lost).toEqual([]);
        } finally {
          await onNext.close();
        }

        // The old source comes back (an operator starts its server): it follows the new source.
        await startServer(serverId);
        const rejoined = await rejoinedAsReplica(source.id, 'the old source');
        expect(rejoined.replica_of).toMatchObject({ id: next.id });
        // It holds what the new source took since, and takes no write itself.
        const mark = writer.acked[writer.acked.length - 1] as number;
        const oldAt = await memberAt(admin, rejoined);
        const onOld = await engine.open(oldAt, false);
        try {
          await waitUntil('the old source to hold the new writes', async () =>
            (await onOld.rows()).includes(mark) ? true : undefined,
          );
          await expect(onOld.write(-1)).rejects.toThrow(/read.only|READONLY/i);
        } finally {
          await onOld.close();
        }
      });

      it('fails over when the source is frozen (SIGSTOP); after SIGCONT it takes no write', async () => {
        const source = await settledSource();
        const serverId = servers.get(source.id) as string;
        const { engine: enginePids } = guestProcesses(baseDirOf(serverId));
        const frozenAt = Date.now();
        expect(signal(enginePids, 'SIGSTOP')).toBeGreaterThan(0);
        try {
          await writer.resumedAfterOutage(frozenAt);
          const next = await settledSource(source.id);
          expect(next.id).not.toBe(source.id);
        } finally {
          signal(enginePids, 'SIGCONT');
        }
        // The fence stopped its server: nothing of it serves, so no client can write to it.
        expect(await serverStatus(serverId)).toBe('SHUTDOWN');
        const at = await memberAt(admin, await viewOf(source.id));
        await expect(
          engine.open(at, false).then((s) => s.write(-2).finally(() => s.close())),
        ).rejects.toThrow();
        await startServer(serverId);
        await rejoinedAsReplica(source.id, 'the frozen source');
        await settledSource();
      });
    });
  },
);

// ---- fault injection: a kill at a random moment of a switchover or a failover ----
//
// Each run builds a Redis set of three with automatic failover, then either promotes a replica
// (switchover) or kills the source's engine (failover), and at a seeded random moment of it kills
// another member's engine or agent. Every run must settle within a bound, with no two writable
// sources among the engines that serve, no member stuck in a task, and every member following
// the one source or in ERROR with a fault; its delete leaves nothing behind. CI: 1 run; a soak
// (runs go TROVELESS_FAILOVER_PARALLEL at a time, 4 by default: sets failing over side by side
// must not disturb each other either):
//   TROVELESS_FAILOVER_RUNS=50 flock /tmp/troveless-heavy.lock npx vitest run --project e2e test/e2e/failover.test.ts

const SOAK_RUNS = Math.max(1, Number(process.env.TROVELESS_FAILOVER_RUNS ?? 1));
const SOAK_PARALLEL = Math.max(1, Number(process.env.TROVELESS_FAILOVER_PARALLEL ?? 4));
const SOAK_SEED = Number(process.env.TROVELESS_FAILOVER_SEED ?? 20261204);
const SETTLE_MS = 240_000;

/** A small seeded generator (mulberry32): a run's plan depends only on the seed and its number. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fault injection during switchover and failover (redis)', BESIDE_SOAK, () => {
  let admin: Login;
  let restoreQuota: (() => Promise<void>) | undefined;
  const outcomes: string[] = [];
  const busy = limiter(SOAK_PARALLEL);
  beforeAll(async () => {
    admin = await login('admin', 'admin');
    restoreQuota = await raiseQuota(admin, 3 * Math.min(SOAK_RUNS, SOAK_PARALLEL));
  });
  afterAll(async () => {
    await restoreQuota?.();
    console.log(
      `[failover soak] ${outcomes.length} runs, ${SOAK_PARALLEL} at once:\n  ${outcomes.sort((a, b) => Number.parseInt(a.slice(4), 10) - Number.parseInt(b.slice(4), 10)).join('\n  ')}`,
    );
  });

  it.concurrent.each(Array.from({ length: SOAK_RUNS }, (_, i) => i))(
    'run %i settles with one writable source at most',
    (run) => busy(() => soakRun(run)),
    900_000,
  );

  async function soakRun(run: number): Promise<void> {
    const rand = random(SOAK_SEED + run * 7919);
    const kind = run % 2 === 0 ? 'failover' : 'switchover';
    const delayMs = Math.floor(rand() * (kind === 'failover' ? 8_000 : 4_000));
    const victimFault = rand() < 0.5 ? 'kill-engine' : 'kill-agent';
    const api = (method: string, path: string, body?: object) =>
      call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
    const viewOf = async (id: string) => (await showInstance(admin, id)).json?.instance as InstanceView;
    const source = await createInstance(admin, {
      name: `fo-soak-${run}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'redis' },
      replication: { failover: 'automatic' },
    });
    const ids = [source.id];
    try {
      await waitForInstance(admin, source.id, healthy, 240_000);
      const res = await api('POST', '/instances', {
        instance: { name: `fo-soak-${run}-r`, replica_of: source.id, replica_count: 2 },
      });
      expect(res.status, res.text).toBe(200);
      ids.push(...((await viewOf(source.id)).replicas as { id: string }[]).map((r) => r.id));
      await Promise.all(ids.slice(1).map((id) => waitForInstance(admin, id, healthy, 300_000)));
      for (const id of ids)
        expect((await api('POST', `/instances/${id}/root`, { password: ROOT_PASSWORD })).status).toBe(200);
      const servers = new Map<string, string>();
      for (const id of ids) servers.set(id, String(await serverIdOf(id)));
      // Replicas vote only once they probe: wait for both to say the source answers.
      await waitUntil(
        'the replicas to probe the source',
        async () =>
          (await Promise.all(ids.slice(1).map(viewOf))).every(
            (v) => (v.replication as { source_reachable?: boolean }).source_reachable === true,
          )
            ? true
            : undefined,
        { timeoutMs: 60_000, intervalMs: 500 },
      );

      const candidate = ids[1 + Math.floor(rand() * 2)] as string;
      const others = ids.filter((id) => id !== source.id);
      const victim =
        kind === 'failover'
          ? (others[Math.floor(rand() * others.length)] as string)
          : (ids[Math.floor(rand() * ids.length)] as string);
      const startedAt = Date.now();
      if (kind === 'failover') {
        signal(guestProcesses(baseDirOf(servers.get(source.id) as string)).engine, 'SIGKILL');
      } else {
        const promoted = await api('POST', `/instances/${candidate}/action`, {
          promote_to_replica_source: {},
        });
        expect(promoted.status, promoted.text).toBe(202);
      }
      // The second fault, at its moment (a plan's delay, not a wait for a condition).
      await new Promise((r) => setTimeout(r, delayMs));
      const procs = guestProcesses(baseDirOf(servers.get(victim) as string));
      signal(victimFault === 'kill-engine' ? procs.engine : procs.agent, 'SIGKILL');

      // Settled: no member in a task (PROMOTE, EJECT); ERROR only with a fault.
      const views = await waitUntil(
        'the set to settle',
        async () => {
          const vs = await Promise.all(ids.map(viewOf));
          // A failover has happened (or failed) once the set shows its event; until then the
          // members are ACTIVE only because detection takes the failover expiry.
          const recorded = vs.some(
            (v) => (v.replication as { events?: unknown[] } | undefined)?.events?.length,
          );
          if (kind === 'failover' && !recorded) return undefined;
          return vs.every((v) => ['ACTIVE', 'ERROR'].includes(v.status)) ? vs : undefined;
        },
        { timeoutMs: SETTLE_MS, intervalMs: 1000 },
      );
      for (const v of views) if (v.status === 'ERROR') expect(v.fault?.message, v.id).toBeTruthy();
      // The records: at most one source that is not in error, and every member that is not in
      // error follows one and the same member (which may itself be in error, with its fault).
      const settledMembers = views.filter((v) => v.status === 'ACTIVE');
      const described = JSON.stringify(views.map((v) => [v.id, v.status, v.replica_of, v.fault?.message]));
      expect(settledMembers.filter((v) => !v.replica_of).length, described).toBeLessThanOrEqual(1);
      const followed = new Set(
        settledMembers.filter((v) => v.replica_of).map((v) => (v.replica_of as { id: string }).id),
      );
      expect(followed.size, described).toBeLessThanOrEqual(1);
      for (const id of followed) expect(ids, described).toContain(id);
      // The engines themselves: at most one takes a write now (a paused or read-only one does not).
      const ca = (await memberAt(admin, views[0] as InstanceView)).ca;
      /** How many members take the probe write. */
      const probeMasters = async () => {
        let masters = 0;
        for (const v of views) {
          const role = new Redis({
            host: v.addresses?.[0]?.address ?? '',
            port: 6379,
            password: ROOT_PASSWORD,
            tls: { ca, rejectUnauthorized: true },
            lazyConnect: true,
            connectTimeout: 2_000,
            commandTimeout: 2_000,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
          });
          role.on('error', () => {});
          try {
            await role.connect();
            await role.set('soak:probe', String(run));
            masters++;
          } catch {
            // not serving: stopped by the fence, paused, a replica, or killed by the test
          } finally {
            role.disconnect();
          }
        }
        return masters;
      };
      let masters = await probeMasters();
      expect(masters).toBeLessThanOrEqual(1);
      // The set keeps a writer whenever it can: a source the records show ACTIVE, whose engine and
      // agent the test left alone, takes writes (a switchover that failed before its hand-over gives
      // the old source its writes back).
      const shownSource = settledMembers.find((v) => !v.replica_of);
      // Past the hand-over (the candidate told to leave the source) the old source stays read-only
      // by design: the candidate may write, and two writers are worse than none.
      const failedSteps = views.map((v) => /step (\w+) failed/.exec(v.fault?.message ?? '')?.[1]);
      const pastHandover = failedSteps.some(
        (step) => step && !['make_read_only', 'get_latest_txn_id', 'wait_for_txn'].includes(step),
      );
      const untouched =
        shownSource &&
        !pastHandover &&
        !(kind === 'failover' && shownSource.id === source.id) &&
        shownSource.id !== victim;
      if (untouched && masters === 0)
        masters = await waitUntil(
          'the source to take writes again',
          async () => ((await probeMasters()) === 1 ? 1 : undefined),
          { timeoutMs: 30_000, intervalMs: 1000 },
        );
      if (untouched) expect(masters, described).toBe(1);
      outcomes.push(
        `run ${run}: ${kind}, ${victimFault} on ${victim === source.id ? 'source' : victim === candidate ? 'candidate' : 'replica'} after ${delayMs} ms; ` +
          `settled in ${((Date.now() - startedAt) / 1000).toFixed(0)} s: ${views.map((v) => `${v.status}${v.replica_of ? '' : '(source)'}`).join(' ')}; ${masters} master` +
          (failedSteps.some(Boolean) ? `; failed at ${failedSteps.filter(Boolean).join(', ')}` : ''),
      );
    } finally {
      // Replicas first (as the records say now), then the rest; nothing may be left behind.
      const vs = await Promise.all(ids.map((id) => viewOf(id).catch(() => undefined)));
      const replicas = ids.filter((_, i) => vs[i]?.replica_of);
      await Promise.all(replicas.map((id) => deleteAndCheck(admin, id, undefined, 300_000)));
      await Promise.all(
        ids.filter((id) => !replicas.includes(id)).map((id) => deleteAndCheck(admin, id, undefined, 300_000)),
      );
    }
  }
});
