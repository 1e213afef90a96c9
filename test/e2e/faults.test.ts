import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { type Limiter, limiter, raiseQuota } from './concurrency.ts';
import { call, type Login, login } from './helpers.ts';
import { createInstance, type InstanceView } from './instance-helpers.ts';
import { baseDirOf, deleteAndCheck, guestProcesses, serverIdOf, signal, viewOf } from './leftovers.ts';

// Fault injection per engine: the guest agent SIGKILLed, the engine SIGKILLed, or the agent
// SIGSTOPped (a hung guest) at a seeded random moment of create, restart, backup and delete.
// Every run must settle (ACTIVE, ERROR with a fault, or gone) within a bound, and the delete that
// follows must leave no process, mount, directory, queue, object or item behind.
//
// CI runs 1 run per scenario (engine x operation): 12 runs, in which each operation meets every
// kind of fault once (the kind turns with the scenario) and so does each engine. The runs of all four
// operations share one pool, so the time a run spends waiting for a timeout to fire (the boot
// timeout, the silence timeout) overlaps with the others' work. An opt-in soak, in chunks:
//   TROVELESS_FAULT_RUNS=50 TROVELESS_FAULT_ENGINES=mysql TROVELESS_FAULT_OPERATIONS=create \
//     flock /tmp/troveless-heavy.lock npx vitest run test/e2e/faults.test.ts
// prints, per scenario, the runs, the settled states and the worst time to settle. A scenario's
// plans (fault kinds and moments) depend only on the seed, never on which chunk runs them.

const ENGINES = ['mysql', 'postgresql', 'redis'] as const;
const OPERATIONS = ['create', 'restart', 'backup', 'delete'] as const;
const FAULTS = ['kill-agent', 'kill-engine', 'stop-agent'] as const;
type Engine = (typeof ENGINES)[number];
type Operation = (typeof OPERATIONS)[number];
type Fault = (typeof FAULTS)[number];

/** A comma-separated subset of `all` from the environment (all of it when unset). */
function chosen<T extends string>(name: string, all: readonly T[]): T[] {
  const raw = process.env[name];
  if (!raw) return [...all];
  const picked = raw.split(',').map((s) => s.trim());
  const unknown = picked.filter((p) => !all.includes(p as T));
  if (unknown.length) throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${all.join(', ')})`);
  return picked as T[];
}

const RUN_ENGINES = chosen('TROVELESS_FAULT_ENGINES', ENGINES);
const RUN_OPERATIONS = chosen('TROVELESS_FAULT_OPERATIONS', OPERATIONS);
const RUNS = Math.max(1, Number(process.env.TROVELESS_FAULT_RUNS ?? 1));
const SEED = Number(process.env.TROVELESS_FAULT_SEED ?? 20261203);
/**
 * Runs in their busy part (create, operation, fault) at once: what a 2-core machine serves without
 * its Lambdas timing out. A run waiting to settle (mostly for the boot or silence timeout to fire)
 * holds no slot, so every run may be in flight; the admin project's quota is raised for them.
 */
const PARALLEL = Number(process.env.TROVELESS_FAULT_PARALLEL ?? 4);
const TOTAL = RUN_ENGINES.length * RUN_OPERATIONS.length * RUNS;
/** Longest a run may take to settle after its fault: the 60 s boot timeout plus margin. */
const SETTLE_MS = 180_000;
/**
 * Longest the delete after a run may take. Deletes queue behind each other on the one compute
 * host (its event loop, /proc scans, the /etc/passwd lock for userdel), so the bound grows with
 * the runs in flight: 180 s for CI's 12; 300 s for the 150 of a soak, where 13 deletes after an
 * agent kill took 3-4 min at the peak (each compute host DELETE outlasting the driver's 60 s and
 * retried by TerminateServer; every one finished and left nothing).
 */
const GONE_MS = Math.max(180_000, TOTAL * 2_000);
/** Where in the operation the fault lands: 0 .. this many ms after the request. */
const WINDOW_MS: Record<Operation, number> = { create: 12_000, restart: 4_000, backup: 3_000, delete: 3_000 };

interface Plan {
  engine: Engine;
  operation: Operation;
  fault: Fault;
  delayMs: number;
}

interface Outcome {
  state: string;
  settleMs: number;
}

/**
 * The plans of one scenario: the kinds of fault in turn (starting from one that depends on the
 * scenario, so that one run per scenario still meets every kind), each at a seeded random moment.
 */
function plans(engine: Engine, operation: Operation): Plan[] {
  const offset = ENGINES.indexOf(engine) * OPERATIONS.length + OPERATIONS.indexOf(operation);
  const delays = fc.sample(fc.integer({ min: 0, max: WINDOW_MS[operation] }), {
    seed: SEED + offset * 7919,
    numRuns: RUNS,
  });
  return delays.map((delayMs, i) => ({
    engine,
    operation,
    fault: FAULTS[(i + offset) % FAULTS.length] as Fault,
    delayMs,
  }));
}

// ---- the fault ----

/**
 * Injects the fault into whatever the guest runs now; a guest not launched yet (or an engine not
 * started yet) is waited for, so that the fault lands as early in the operation as it can.
 */
async function inject(fault: Fault, instanceId: string, isSettled: () => Promise<boolean>): Promise<string> {
  // Processes are looked for often (a fault lands early); the API is asked once a second: every
  // show is a Lambda call, and three dozen runs polling fast would load the cloud they test.
  let asked = 0;
  const settled = async () => {
    if (Date.now() - asked < 1000) return false;
    asked = Date.now();
    return isSettled();
  };
  return waitUntil(
    `${fault} on ${instanceId}`,
    async () => {
      const serverId = await serverIdOf(instanceId);
      if (!serverId) return (await settled()) ? 'nothing to hit: settled before launch' : undefined;
      const procs = guestProcesses(baseDirOf(serverId));
      const targets = fault === 'kill-engine' ? procs.engine : procs.agent;
      if (targets.length) {
        signal(targets, fault === 'stop-agent' ? 'SIGSTOP' : 'SIGKILL');
        return `${fault}: ${targets.join(', ')}`;
      }
      return (await settled())
        ? `nothing to hit: ${fault === 'kill-engine' ? 'no engine' : 'no agent'}`
        : undefined;
    },
    { timeoutMs: SETTLE_MS, intervalMs: 100 },
  );
}

// ---- settling ----

/**
 * Settled: gone; ERROR with a fault; or ACTIVE as told by a heartbeat sent after the fault
 * (HEALTHY, or not and saying why with a fault), or silent past the heartbeat expiry.
 */
function settledState(view: InstanceView | 'gone', plan: Plan, injectedAt: number): string | undefined {
  if (view === 'gone') return 'gone';
  if (plan.operation === 'delete') return undefined; // a delete ends only when the instance is gone
  if (view.status === 'ERROR') return view.fault?.message ? 'ERROR+fault' : undefined;
  if (view.status !== 'ACTIVE') return undefined;
  if (view.operating_status === 'ERROR') return `ACTIVE/silent${view.fault?.message ? '+fault' : ''}`;
  const heardAfter = Date.parse(`${String(view.service_status_updated)}Z`) >= injectedAt + 1000;
  if (!heardAfter) return undefined;
  if (view.operating_status === 'HEALTHY') return 'ACTIVE/HEALTHY';
  // Anything else (an engine found dead) must say why.
  return view.fault?.message ? `ACTIVE/${view.operating_status}+fault` : undefined;
}

/**
 * One run. Its busy part (create, wait for healthy, start the operation, inject the fault) holds
 * one of the `busy` slots; the wait for it to settle, mostly a timeout firing, holds none.
 */
async function run(who: Login, plan: Plan, busy: Limiter): Promise<Outcome> {
  let id: string | undefined;
  let backupId: string | undefined;
  try {
    const injected = await busy(async () => {
      const created = await createInstance(who, {
        name: `fault-${plan.engine}-${plan.operation}-${plan.fault}`,
        flavorRef: '7',
        volume: { size: 1 },
        datastore: { type: plan.engine },
      });
      const instanceId = created.id;
      id = instanceId;
      if (plan.operation !== 'create') {
        // The operation under test starts from a healthy instance.
        const ready = await waitUntil(
          `instance ${instanceId} healthy`,
          async () => {
            const v = await viewOf(who, instanceId);
            if (v === 'gone') return undefined;
            return v.status === 'ERROR' || (v.status === 'ACTIVE' && v.operating_status === 'HEALTHY')
              ? v
              : undefined;
          },
          { timeoutMs: SETTLE_MS, intervalMs: 1000 },
        );
        if (ready.status === 'ERROR')
          throw new Error(`create failed before the fault: ${ready.fault?.message}`);
        const path = `/v1.0/${who.projectId}`;
        const started =
          plan.operation === 'restart'
            ? await call('POST', `${path}/instances/${instanceId}/action`, who.token, { restart: {} })
            : plan.operation === 'backup'
              ? await call('POST', `${path}/backups`, who.token, {
                  backup: { name: `fault-${instanceId}`, instance: instanceId },
                })
              : await call('DELETE', `${path}/instances/${instanceId}`, who.token);
        expect(started.status, started.text).toBe(202);
        backupId = (started.json?.backup as { id?: string } | undefined)?.id;
      }
      // The fault's seeded random moment in the operation.
      await new Promise((r) => setTimeout(r, plan.delayMs));
      const settledNow = async () =>
        settledState(await viewOf(who, instanceId), plan, Date.now()) !== undefined;
      await inject(plan.fault, instanceId, settledNow);
      return Date.now();
    });
    const instanceId = id as string;
    const state = await waitUntil(
      `instance ${instanceId} to settle after ${plan.fault} during ${plan.operation}`,
      async () => {
        const s = settledState(await viewOf(who, instanceId), plan, injected);
        if (!s || !backupId) return s;
        // A backup settles too: COMPLETED, or FAILED.
        const b = (await call('GET', `/v1.0/${who.projectId}/backups/${backupId}`, who.token)).json?.backup as
          | { status: string }
          | undefined;
        return b && ['COMPLETED', 'FAILED'].includes(b.status) ? `${s}, backup ${b.status}` : undefined;
      },
      { timeoutMs: SETTLE_MS, intervalMs: 1000 },
    );
    return { state, settleMs: Date.now() - injected };
  } finally {
    if (id) await deleteAndCheck(who, id, backupId, GONE_MS);
  }
}

// ---- the scenarios ----

const figures = new Map<string, Outcome[]>();

describe('fault injection per engine', () => {
  let admin: Login;
  let restoreQuota: (() => Promise<void>) | undefined;
  const busy = limiter(PARALLEL);
  beforeAll(async () => {
    admin = await login('admin', 'admin');
    restoreQuota = await raiseQuota(admin, TOTAL);
  });
  afterAll(async () => {
    await restoreQuota?.();
    console.log(
      `fault injection: ${RUNS} runs per scenario, seed ${SEED}, ${PARALLEL} busy at once; ` +
        `engines ${RUN_ENGINES.join(',')}; operations ${RUN_OPERATIONS.join(',')}`,
    );
    for (const [scenario, outcomes] of figures) {
      const states = new Map<string, number>();
      for (const o of outcomes) states.set(o.state, (states.get(o.state) ?? 0) + 1);
      const worst = Math.max(...outcomes.map((o) => o.settleMs)) / 1000;
      console.log(
        `  ${scenario.padEnd(20)} runs ${outcomes.length}; ${[...states].map(([s, n]) => `${s} x${n}`).join(', ')}; worst settle ${worst.toFixed(1)} s`,
      );
    }
  });

  // One test per operation, all four at once: their runs (every engine) share the pool of
  // PARALLEL slots, as a loaded cloud would serve them. Creates queue first: they wait longest.
  const budget = Math.max(600_000, Math.ceil(TOTAL / PARALLEL) * 4 * SETTLE_MS);
  it.concurrent.each(RUN_OPERATIONS)(
    'every run of %s settles and its delete leaves nothing behind',
    { timeout: budget },
    async (operation) => {
      const all = RUN_ENGINES.flatMap((engine) => plans(engine, operation));
      // Every run finishes (and cleans up) before the test judges them.
      const settled = await Promise.all(
        all.map((plan) =>
          run(admin, plan, busy).then(
            (outcome) => ({ plan, outcome, error: undefined }),
            (error: Error) => ({ plan, outcome: undefined, error }),
          ),
        ),
      );
      const failed = settled.flatMap(({ plan, error }) =>
        error ? [`${plan.engine} ${plan.fault} after ${plan.delayMs} ms: ${error.message}`] : [],
      );
      for (const { plan, outcome } of settled) {
        if (!outcome) continue;
        const key = `${plan.engine}/${operation}`;
        figures.set(key, [...(figures.get(key) ?? []), outcome]);
      }
      expect(failed).toEqual([]);
      for (const { outcome } of settled) {
        if (operation === 'delete') expect(outcome?.state).toBe('gone');
        else expect(outcome?.state).not.toBe('gone');
      }
      expect(settled).toHaveLength(RUN_ENGINES.length * RUNS);
    },
  );
});
