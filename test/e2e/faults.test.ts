import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ListStateMachinesCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { call, cloud, type Login, login } from './helpers.ts';
import { createInstance, type InstanceView, showInstance } from './instance-helpers.ts';
import { processesMentioning } from './processes.ts';

// Fault injection per engine: the guest agent SIGKILLed, the engine SIGKILLed, or the agent
// SIGSTOPped (a hung guest) at a seeded random moment of create, restart, backup and delete.
// Every run must settle (ACTIVE, ERROR with a fault, or gone) within a bound, and the delete that
// follows must leave no process, mount, directory, queue, object or item behind.
//
// CI runs 3 runs per scenario (engine x operation), one per kind of fault. An opt-in soak:
//   TROVELESS_FAULT_RUNS=50 flock /tmp/troveless-heavy.lock npx vitest run test/e2e/faults.test.ts
// prints, per scenario, the runs, the settled states and the worst time to settle.

const ENGINES = ['mysql', 'postgresql', 'redis'] as const;
const OPERATIONS = ['create', 'restart', 'backup', 'delete'] as const;
const FAULTS = ['kill-agent', 'kill-engine', 'stop-agent'] as const;
type Engine = (typeof ENGINES)[number];
type Operation = (typeof OPERATIONS)[number];
type Fault = (typeof FAULTS)[number];

const RUNS = Math.max(3, Number(process.env.TROVELESS_FAULT_RUNS ?? 3));
const SEED = Number(process.env.TROVELESS_FAULT_SEED ?? 20261203);
/** Runs in flight at once: enough to load the machine, few enough for the default quota. */
const PARALLEL = Number(process.env.TROVELESS_FAULT_PARALLEL ?? 4);
/** Longest a run may take to settle after its fault: the 60 s boot timeout plus margin. */
const SETTLE_MS = 180_000;
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

const aws = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};
const s3 = () =>
  new S3Client({
    ...aws,
    endpoint: cloud().endpoints.s3,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
const sqs = () => new SQSClient({ ...aws, endpoint: cloud().endpoints.sqs });
const dynamo = () =>
  DynamoDBDocumentClient.from(new DynamoDBClient({ ...aws, endpoint: cloud().endpoints.dynamodb }));

/** The plans of one scenario: every kind of fault in turn, each at a seeded random moment. */
function plans(engine: Engine, operation: Operation): Plan[] {
  const offset = ENGINES.indexOf(engine) + OPERATIONS.indexOf(operation);
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

async function pool<T, R>(items: T[], limit: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await run(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---- the guest's processes, as the local compute host laid them out ----

async function serverIdOf(instanceId: string): Promise<string | undefined> {
  const res = await fetch(`${cloud().endpoints.compute}/servers?instance_id=${instanceId}`);
  const { servers } = (await res.json()) as { servers: { id: string }[] };
  return servers[0]?.id;
}

const baseDirOf = (serverId: string) => join(cloud().stateDir, 'compute', serverId);

function guestProcesses(baseDir: string): { agent: number[]; engine: number[] } {
  const all = processesMentioning(baseDir).filter((pid) => pid !== process.pid);
  const agent = processesMentioning(join(baseDir, 'agent.json'));
  return { agent, engine: all.filter((pid) => !agent.includes(pid)) };
}

function signal(pids: number[], sig: NodeJS.Signals): number {
  let hit = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
      hit++;
    } catch {
      // exited meanwhile
    }
  }
  return hit;
}

/**
 * Injects the fault into whatever the guest runs now; a guest not launched yet (or an engine not
 * started yet) is waited for, so that the fault lands as early in the operation as it can.
 */
async function inject(fault: Fault, instanceId: string, settled: () => Promise<boolean>): Promise<string> {
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

async function viewOf(who: Login, id: string): Promise<InstanceView | 'gone'> {
  const res = await showInstance(who, id);
  if (res.status === 404) return 'gone';
  if (res.status !== 200) throw new Error(`show ${id}: ${res.status} ${res.text}`);
  return res.json?.instance as InstanceView;
}

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

async function run(who: Login, plan: Plan): Promise<Outcome> {
  const created = await createInstance(who, {
    name: `fault-${plan.engine}-${plan.operation}-${plan.fault}`,
    flavorRef: '7',
    volume: { size: 1 },
    datastore: { type: plan.engine },
  });
  const id = created.id;
  let backupId: string | undefined;
  try {
    if (plan.operation !== 'create') {
      // The operation under test starts from a healthy instance.
      const ready = await waitUntil(
        `instance ${id} healthy`,
        async () => {
          const v = await viewOf(who, id);
          if (v === 'gone') return undefined;
          return v.status === 'ERROR' || (v.status === 'ACTIVE' && v.operating_status === 'HEALTHY')
            ? v
            : undefined;
        },
        { timeoutMs: SETTLE_MS, intervalMs: 300 },
      );
      if (ready.status === 'ERROR')
        throw new Error(`create failed before the fault: ${ready.fault?.message}`);
      const path = `/v1.0/${who.projectId}`;
      const started =
        plan.operation === 'restart'
          ? await call('POST', `${path}/instances/${id}/action`, who.token, { restart: {} })
          : plan.operation === 'backup'
            ? await call('POST', `${path}/backups`, who.token, {
                backup: { name: `fault-${id}`, instance: id },
              })
            : await call('DELETE', `${path}/instances/${id}`, who.token);
      expect(started.status, started.text).toBe(202);
      backupId = (started.json?.backup as { id?: string } | undefined)?.id;
    }
    await new Promise((r) => setTimeout(r, plan.delayMs));
    const settledNow = async () => settledState(await viewOf(who, id), plan, Date.now()) !== undefined;
    await inject(plan.fault, id, settledNow);
    const injected = Date.now();
    const state = await waitUntil(
      `instance ${id} to settle after ${plan.fault} during ${plan.operation}`,
      async () => {
        const s = settledState(await viewOf(who, id), plan, injected);
        if (!s || !backupId) return s;
        // A backup settles too: COMPLETED, or FAILED.
        const b = (await call('GET', `/v1.0/${who.projectId}/backups/${backupId}`, who.token)).json?.backup as
          | { status: string }
          | undefined;
        return b && ['COMPLETED', 'FAILED'].includes(b.status) ? `${s}, backup ${b.status}` : undefined;
      },
      { timeoutMs: SETTLE_MS, intervalMs: 250 },
    );
    return { state, settleMs: Date.now() - injected };
  } finally {
    await deleteAndCheck(who, id, backupId);
  }
}

/** Deletes what the run made and checks that nothing of it is left anywhere. */
async function deleteAndCheck(who: Login, id: string, backupId?: string) {
  const serverId = await serverIdOf(id);
  if ((await viewOf(who, id)) !== 'gone') {
    const res = await call('DELETE', `/v1.0/${who.projectId}/instances/${id}`, who.token);
    expect([202, 404], res.text).toContain(res.status);
  }
  await waitUntil(
    `instance ${id} gone`,
    async () => ((await viewOf(who, id)) === 'gone' ? true : undefined),
    {
      timeoutMs: SETTLE_MS,
      intervalMs: 300,
    },
  );
  if (backupId) {
    const res = await call('DELETE', `/v1.0/${who.projectId}/backups/${backupId}`, who.token);
    expect([202, 404], res.text).toContain(res.status);
  }

  if (serverId) {
    const baseDir = baseDirOf(serverId);
    expect(processesMentioning(baseDir).filter((pid) => pid !== process.pid)).toEqual([]);
    expect(existsSync(baseDir)).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(baseDir);
  }
  const queues = await sqs().send(new ListQueuesCommand({ QueueNamePrefix: `troveless-local-guest-${id}` }));
  expect(queues.QueueUrls ?? []).toEqual([]);
  const prefix = `${who.projectId}/${id}/`;
  const bucket = 'troveless-local-backups';
  const objects = await s3().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  expect(objects.Contents ?? []).toEqual([]);
  const uploads = await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  expect(uploads.Uploads ?? []).toEqual([]);
  const items = await dynamo().send(
    new QueryCommand({
      TableName: 'troveless-local-instances',
      IndexName: 'by-id',
      KeyConditionExpression: 'id = :id',
      ExpressionAttributeValues: { ':id': id },
    }),
  );
  expect(items.Items ?? []).toEqual([]);
  const backups = await dynamo().send(
    new ScanCommand({
      TableName: 'troveless-local-backups',
      FilterExpression: 'instance_id = :id',
      ExpressionAttributeValues: { ':id': id },
    }),
  );
  expect(backups.Items ?? []).toEqual([]);
}

// ---- the scenarios ----

const figures = new Map<string, Outcome[]>();

describe('fault injection per engine', () => {
  let admin: Login;
  beforeAll(async () => {
    admin = await login('admin', 'admin');
  });
  afterAll(() => {
    console.log(`fault injection: ${RUNS} runs per scenario, seed ${SEED}`);
    for (const [scenario, outcomes] of figures) {
      const states = new Map<string, number>();
      for (const o of outcomes) states.set(o.state, (states.get(o.state) ?? 0) + 1);
      const worst = Math.max(...outcomes.map((o) => o.settleMs)) / 1000;
      console.log(
        `  ${scenario.padEnd(20)} runs ${outcomes.length}; ${[...states].map(([s, n]) => `${s} x${n}`).join(', ')}; worst settle ${worst.toFixed(1)} s`,
      );
    }
  });

  // One test per operation; its scenarios (every engine) run side by side, as a loaded cloud would.
  const budget = Math.max(600_000, Math.ceil((ENGINES.length * RUNS) / PARALLEL) * 4 * SETTLE_MS);
  it.each(OPERATIONS)(
    'every run of %s settles and its delete leaves nothing behind',
    { timeout: budget },
    async (operation) => {
      const all = ENGINES.flatMap((engine) => plans(engine, operation));
      // Every run finishes (and cleans up) before the test judges them.
      const settled = await pool(all, PARALLEL, (plan) =>
        run(admin, plan).then(
          (outcome) => ({ plan, outcome, error: undefined }),
          (error: Error) => ({ plan, outcome: undefined, error }),
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
      expect(settled).toHaveLength(ENGINES.length * RUNS);
    },
  );
});

describe('an instance whose create workflow is gone', () => {
  it('stays BUILD, and its owner can delete it without an admin; nothing is left', async () => {
    const demo = await login('demo', 'demo');
    const created = await createInstance(demo, {
      name: 'fault-orphan-build',
      flavorRef: '7',
      volume: { size: 1 },
      // MariaDB's init takes seconds: the build is still running when its workflow is stopped.
      datastore: { type: 'mysql' },
    });
    // The create is refused deletion while its workflow runs (Trove's 422 in BUILD)...
    const early = await call('DELETE', `/v1.0/${demo.projectId}/instances/${created.id}`, demo.token);
    expect(early.status).toBe(422);
    // ...and once the workflow is gone (stopped here; a lost execution is the same to the API),
    // nothing will ever finish the build.
    const sfn = new SFNClient({ ...aws, endpoint: cloud().endpoints.stepfunctions });
    const machines = await sfn.send(new ListStateMachinesCommand({}));
    const machine = machines.stateMachines?.find((m) => m.name?.endsWith('-instance-create'));
    const executionArn = `${machine?.stateMachineArn?.replace(':stateMachine:', ':execution:')}:${created.id}`;
    await sfn.send(new StopExecutionCommand({ executionArn }));
    const view = await viewOf(demo, created.id);
    expect(view !== 'gone' && view.status).toBe('BUILD');
    await deleteAndCheck(demo, created.id);
  });
});
