import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { DeleteQueueCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCloud, type LocalCloudOptions, startLocalCloud } from '../../local/cloud.ts';
import { stopComputeLeftovers } from '../../local/compute/host.ts';
import { freePort } from '../../local/ports.ts';
import { waitUntil } from '../../local/wait.ts';
import { UNREACHED_RATE_LIMITS } from './rate-limit-settings.ts';

// The local cloud stopped and started again (as Ctrl-C and `npm start`) while a create, a
// backup, a restart and a delete are under way: every one of them ends settled, and every
// instance left answers guest calls, which travel through its own (kept) queue.
// A cloud of its own, so that stopping it disturbs no other test.

const root = resolve(import.meta.dirname, '../..');

type View = Record<string, unknown> & {
  id: string;
  status: string;
  operating_status?: string;
  fault?: { message: string };
};

describe('a restart of the local cloud during operations', () => {
  let options: LocalCloudOptions;
  let cloud: LocalCloud | undefined;
  let stateDir = '';

  afterAll(async () => {
    await cloud?.stop();
    // Its servers go for good (users, volumes, cgroups, rules) before their state dir does.
    if (stateDir) await stopComputeLeftovers({ stateDir, repoRoot: root });
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  let session: { token: string; project: string } | undefined;
  async function api(method: string, path: string, body?: object) {
    session ??= await login();
    const res = await fetch(`${cloud?.endpoints.api}/v1.0/${session.project}${path}`, {
      method,
      headers: { 'x-auth-token': session.token, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }
  async function login() {
    const auth = await fetch(`${cloud?.endpoints.api}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'admin', password: 'admin', domain: { id: 'default' } } },
          },
          scope: { project: { name: 'admin', domain: { id: 'default' } } },
        },
      }),
    });
    const project = ((await auth.json()) as { token: { project: { id: string } } }).token.project.id;
    return { token: auth.headers.get('x-subject-token') ?? '', project };
  }
  /** The workflows (by state machine) that a restart interrupted and resumed, and any still running. */
  async function workflows(): Promise<{ resumed: string[]; running: string[] }> {
    const sfn = new SFNClient({
      endpoint: cloud?.endpoints.stepfunctions,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    const resumed: string[] = [];
    const running: string[] = [];
    for (const machine of (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? []) {
      const { executions = [] } = await sfn.send(
        new ListExecutionsCommand({ stateMachineArn: machine.stateMachineArn }),
      );
      for (const e of executions) {
        const out = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
        const name = String(machine.name).replace(/^troveless-local-/, '');
        if (out.redriveCount) resumed.push(name);
        if (out.status === 'RUNNING') running.push(name);
      }
    }
    sfn.destroy();
    return { resumed: resumed.sort(), running };
  }

  const show = async (id: string) => {
    const res = await api('GET', `/instances/${id}`);
    return res.status === 404 ? 'gone' : (res.json?.instance as View);
  };
  const create = async (name: string) => {
    const res = await api('POST', '/instances', {
      instance: { name, flavorRef: '7', volume: { size: 1 }, datastore: { type: 'redis' } },
    });
    expect(res.status).toBe(200);
    return String((res.json?.instance as View | undefined)?.id);
  };
  /** Settled as issue 9 means it: ACTIVE and healthy, ERROR with a fault, or gone. */
  const settled = (id: string) =>
    waitUntil(
      `instance ${id} settled`,
      async () => {
        const view = await show(id);
        if (view === 'gone') return view;
        if (view.status === 'ACTIVE' && view.operating_status === 'HEALTHY') return view;
        if (view.status === 'ERROR' && view.fault?.message) return view;
        return undefined;
      },
      { timeoutMs: 150_000, intervalMs: 500 },
    );
  /** A call the guest answers: root enabled (a new password) then disabled, on the engine itself. */
  const guestCallsWork = async (id: string) => {
    const enabled = await api('POST', `/instances/${id}/root`);
    expect(enabled.status, JSON.stringify(enabled.json)).toBe(200);
    expect((enabled.json?.user as { password?: string } | undefined)?.password).toBeTruthy();
    expect((await api('DELETE', `/instances/${id}/root`)).status).toBe(204);
  };

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'troveless-restarts-'));
    const ports = {
      api: await freePort(),
      lambda: await freePort(),
      dynamodb: await freePort(),
      sqs: await freePort(),
      s3: await freePort(),
      stepfunctions: await freePort(),
      compute: await freePort(),
      doorbell: await freePort(),
    };
    options = {
      root,
      stateDir,
      stage: 'local',
      host: '127.0.0.1',
      ports,
      wipe: true,
      env: {
        TROVELESS_AGENT_HEARTBEAT_EXPIRY: '8',
        // As the e2e cloud's (global-setup.ts): a create whose guest the stop caught in prepare and
        // that never heartbeats again fails after a minute, not after the deployed 300 s boot
        // window (119 s here, bounded by the usage timeout); on a loaded CI machine it does.
        TROVELESS_AGENT_BOOT_TIMEOUT: '60',
        TROVELESS_REPORT_INTERVAL: '2',
        TROVELESS_USAGE_TIMEOUT: '120',
        TROVELESS_AGENT_CALL_LOW_TIMEOUT: '20',
        TROVELESS_AGENT_CALL_HIGH_TIMEOUT: '90',
        TROVELESS_BACKUP_TIMEOUT: '60',
        TROVELESS_SCHEDULES: 'off',
        // It polls four instances at once, over Trove's 200 GETs a minute.
        TROVELESS_RATE_LIMITS: UNREACHED_RATE_LIMITS,
      },
      log: (line) => process.env.TROVELESS_TEST_VERBOSE && console.log(`[restarts] ${line}`),
    };
  });

  it('settles a create, a backup, a restart and a delete, and guests answer afterwards', async () => {
    cloud = await startLocalCloud(options);
    const [restarted, backedUp, deleted] = await Promise.all(
      ['rs-restart', 'rs-backup', 'rs-delete'].map(create),
    );
    for (const id of [restarted, backedUp, deleted]) {
      expect(await settled(id!)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    }

    // All four start, the quickest last, then the cloud stops at once: each is somewhere in
    // its workflow.
    const created = await create('rs-create');
    const backup = await api('POST', '/backups', { backup: { name: 'rs-backup', instance: backedUp } });
    expect(backup.status).toBe(202);
    const backupId = String((backup.json?.backup as { id: string } | undefined)?.id);
    expect((await api('DELETE', `/instances/${deleted}`)).status).toBe(202);
    expect((await api('POST', `/instances/${restarted}/action`, { restart: {} })).status).toBe(202);
    await cloud.stop();
    cloud = undefined;

    cloud = await startLocalCloud({ ...options, wipe: false });
    session = undefined;
    const ends = await Promise.all([created, restarted!, backedUp!, deleted!].map(settled));
    // Resumed where they were. The instance being deleted is gone; the ones being restarted and
    // backed up are in service again; the one being built is ACTIVE, or ERROR with a fault when
    // its guest died half-way through prepare (an order a guest dies running is answered as
    // failed, never run twice).
    expect(ends[3]).toBe('gone');
    const views = ends.slice(0, 3) as View[];
    expect(views.map((v) => v.status)).toEqual([
      expect.stringMatching(/^(ACTIVE|ERROR)$/),
      'ACTIVE',
      'ACTIVE',
    ]);
    const finished = await waitUntil(
      'backup settled',
      async () => {
        const view = (await api('GET', `/backups/${backupId}`)).json?.backup as
          | { status: string }
          | undefined;
        return view && ['COMPLETED', 'FAILED'].includes(view.status) ? view : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    // Likewise a backup is COMPLETED, or FAILED (Trove's backup view shows no fault; the
    // reason is kept on the item) when its guest died while streaming it.
    expect(finished.status).toMatch(/^(COMPLETED|FAILED)$/);
    // The restart was answered, not timed out: an answer the guest sent while the control plane
    // was down, or never sent, is sent again when the resumed workflow sends the order again.
    expect(views[1]?.fault).toBeUndefined();
    const active = views.filter((v) => v.status === 'ACTIVE').map((v) => v.id);
    expect(active).toContain(restarted);
    expect(active).toContain(backedUp);
    for (const id of active) await guestCallsWork(id);
    console.log(
      `restart during operations: create ${views[0]?.status}${views[0]?.fault ? ` (${views[0].fault.message})` : ''}, ` +
        `backup ${finished.status}`,
    );
    // Which of the four were still under way at the stop depends on the machine's speed (a quick
    // create can finish first); at least one was, and went on where it was. None is left running:
    // a create's may still be ending when its instance shows ACTIVE (the conductor ends the build
    // as prepare answers; the workflow's MarkReady then finds nothing to do), so it is waited for.
    const { resumed } = await workflows();
    console.log(`workflows resumed after the restart: ${resumed.join(', ')}`);
    expect(resumed.length).toBeGreaterThan(0);
    let running: string[] = [];
    await waitUntil(
      'no workflow running',
      async () => {
        running = (await workflows()).running;
        return running.length === 0 || undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(() => {});
    expect(running).toEqual([]);

    // A guest whose queue disappears is not shown HEALTHY.
    const sqs = new SQSClient({
      endpoint: cloud?.endpoints.sqs,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    const { QueueUrl } = await sqs.send(
      new GetQueueUrlCommand({ QueueName: `troveless-local-guest-${restarted}` }),
    );
    await sqs.send(new DeleteQueueCommand({ QueueUrl }));
    sqs.destroy();
    // Its agent says so ("guestagent error", shown as ERROR) at its next heartbeat. A heartbeat in
    // between may say ACTIVE (the engine's pid there, one ping missed on a loaded machine), which is
    // true; what is asked is that ERROR comes.
    const seen: string[] = [];
    const reported = await waitUntil(
      'missing queue reported',
      async () => {
        const view = await show(String(restarted));
        if (view === 'gone') return view;
        seen.push(String(view.operating_status));
        return view.operating_status === 'ERROR' ? view : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    ).catch(() => undefined);
    expect(reported, `operating statuses seen: ${seen.join(', ')}`).toMatchObject({
      operating_status: 'ERROR',
    });
  }, 420_000);

  /** The compute host's record of the server of instance `id`, if it has one. */
  const serverOf = async (id: string) => {
    const dir = join(stateDir, 'compute', 'servers');
    for (const name of await readdir(dir).catch(() => [])) {
      if (!name.endsWith('.json')) continue;
      const record = JSON.parse(await readFile(join(dir, name), 'utf8').catch(() => '{}')) as {
        instance_id?: string;
        agentPid?: number;
        launching?: boolean;
      };
      if (record.instance_id === id) return record;
    }
    return undefined;
  };
  /** The pid of the local cloud's child process `name`, as its pid file names it. */
  const pidOf = async (name: string) =>
    (JSON.parse(await readFile(join(stateDir, 'pids.json'), 'utf8')) as { name: string; pid: number }[]).find(
      (p) => p.name === name,
    )?.pid;
  const computeHostPid = () => pidOf('compute-host');

  // Nova's compute service dies (here: SIGKILL) while it launches a server: it is started again,
  // takes the half-made server apart, and the workflow's retried launch makes it afresh.
  it('goes on when the compute host is killed in the middle of a launch: the create ends ACTIVE, guests it had stay up', async () => {
    cloud ??= await startLocalCloud({ ...options, wipe: false });
    const kept = await create('kh-kept');
    expect(await settled(kept)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    const keptAgent = (await serverOf(kept))?.agentPid;
    expect(keptAgent).toBeGreaterThan(0);
    const killed = await computeHostPid();
    expect(killed).toBeGreaterThan(0);

    const created = await create('kh-create');
    // While the host makes it: its record is the first thing it writes, marked until it is done.
    await waitUntil(
      'the launch under way',
      async () => ((await serverOf(created))?.launching ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 5,
      },
    );
    process.kill(killed as number, 'SIGKILL');

    expect(await settled(created)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    const restarted = await computeHostPid();
    expect(restarted).not.toBe(killed);
    // The guest it had runs on, adopted by the new host, and answers.
    expect((await serverOf(kept))?.agentPid).toBe(keptAgent);
    expect(await show(kept)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    for (const id of [kept, created]) await guestCallsWork(id);

    for (const id of [kept, created]) expect((await api('DELETE', `/instances/${id}`)).status).toBe(202);
    for (const id of [kept, created]) expect(await settled(id)).toBe('gone');
    // Nothing of either, nor of the launch the kill cut short, is left on the host: no record
    // names them, and every server directory left has a record (the other test's instances).
    expect(await serverOf(kept)).toBeUndefined();
    expect(await serverOf(created)).toBeUndefined();
    const records = (await readdir(join(stateDir, 'compute', 'servers'))).map((n) =>
      n.replace(/\.json$/, ''),
    );
    const dirs = (await readdir(join(stateDir, 'compute'))).filter((n) => n.startsWith('srv-'));
    expect(dirs.filter((d) => !records.includes(d))).toEqual([]);
  }, 300_000);

  // serverless-offline (every Lambda of the cloud, in one process) killed outright while a create
  // is under way: it is started again, the create's workflow retries its steps and finishes, and
  // the API and the guest channel work as before.
  it('goes on when serverless-offline is killed: a create under way ends ACTIVE, the API answers again', async () => {
    cloud ??= await startLocalCloud({ ...options, wipe: false });
    const killed = await pidOf('offline');
    expect(killed).toBeGreaterThan(0);
    const created = await create('so-create');
    process.kill(-(killed as number), 'SIGKILL');

    expect(await settled(created)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    const restarted = await pidOf('offline');
    expect(restarted).toBeGreaterThan(0);
    expect(restarted).not.toBe(killed);
    await guestCallsWork(created);
    expect((await api('DELETE', `/instances/${created}`)).status).toBe(202);
    expect(await settled(created)).toBe('gone');
  }, 300_000);

  // DynamoDB Local (every table of the cloud) killed outright while a create is under way: it is
  // started again on its data directory, what was written before is there, and the create's
  // workflow, the conductor and the API carry on.
  it('goes on when DynamoDB Local is killed: what it held is kept, a create under way ends ACTIVE', async () => {
    cloud ??= await startLocalCloud({ ...options, wipe: false });
    const kept = await create('db-kept');
    expect(await settled(kept)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    const killed = await pidOf('dynamodb');
    expect(killed).toBeGreaterThan(0);
    const created = await create('db-create');
    process.kill(killed as number, 'SIGKILL');
    // Until it is back, the API says the service is unavailable for the moment (503, try again),
    // never that it failed (500).
    // Each answer's status as it came, whatever its body (a fetch that failed outright counts too).
    const answered: (number | string)[] = [];
    await waitUntil(
      'the API answering again',
      async () => {
        const res = await fetch(`${cloud?.endpoints.api}/v1.0/${session?.project}/instances/${kept}`, {
          headers: { 'x-auth-token': session?.token ?? '' },
        }).catch((err: Error) => err.message);
        answered.push(typeof res === 'string' ? res : res.status);
        if (typeof res !== 'string') await res.arrayBuffer();
        return answered.at(-1) === 200 || undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    console.log(`GET answers while DynamoDB Local was down and after: ${answered.join(', ')}`);
    expect(answered.filter((status) => status !== 200 && status !== 503)).toEqual([]);
    // The JVM takes seconds to start again: the first answers came while it was down.
    expect(answered).toContain(503);

    expect(await settled(created)).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    const restarted = await pidOf('dynamodb');
    expect(restarted).toBeGreaterThan(0);
    expect(restarted).not.toBe(killed);
    expect(await show(kept)).toMatchObject({
      name: 'db-kept',
      status: 'ACTIVE',
      operating_status: 'HEALTHY',
    });
    for (const id of [kept, created]) await guestCallsWork(id);
    for (const id of [kept, created]) expect((await api('DELETE', `/instances/${id}`)).status).toBe(202);
    for (const id of [kept, created]) expect(await settled(id)).toBe('gone');
  }, 300_000);
});
