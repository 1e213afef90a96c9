import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lambdaInvoker } from '../../local/lambda.ts';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil } from '../../local/wait.ts';
import { api, call, cloud, type Login, login } from './helpers.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';

const run = promisify(execFile);

// Backup schedules as python-troveclient drives them (issue 14): its `trove schedule-*` and
// `execution-*` commands, and `openstack database backup execution delete`, go through
// python-mistralclient to the catalog's workflowv2 endpoint (lib/mistral/). A cron trigger is the
// instance's backup policy; the scheduler's run takes the backup, which lists as the execution.
// Another project sees none of it.

function authFlags(user: string) {
  const auth = {
    'os-auth-url': `${api()}/v3`,
    'os-username': user,
    'os-password': user,
    'os-project-name': user,
    'os-user-domain-id': 'default',
    'os-project-domain-id': 'default',
    'os-region-name': 'RegionOne',
  };
  return Object.entries(auth).flatMap(([k, v]) => [`--${k}`, v]);
}

const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME });

async function trove(user: string, ...args: string[]) {
  const out = await run('trove', [...authFlags(user), ...args], { env: env(), timeout: 90_000 });
  return out.stdout;
}

async function openstack(user: string, ...args: string[]) {
  const flags = [...authFlags(user), '--os-identity-api-version', '3'];
  return (await run('openstack', [...flags, ...args], { env: env(), timeout: 90_000 })).stdout;
}

/** The rows of the CLI's `Property | Value` table. */
function properties(table: string): Record<string, string> {
  const rows: Record<string, string> = {};
  for (const line of table.split('\n')) {
    const m = /^\|\s*(\S+)\s*\|\s*(.*?)\s*\|$/.exec(line);
    if (m && m[1] !== 'Property') rows[m[1]!] = m[2]!;
  }
  return rows;
}

/** A CLI command that must fail, and what it printed. */
async function failing(command: Promise<string>): Promise<string> {
  try {
    await command;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  throw new Error('the command succeeded');
}

async function mistral(who: Login, method: string, path: string, body?: unknown) {
  const res = await fetch(`${api()}/v2${path}`, {
    method,
    headers: {
      'x-auth-token': who.token,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

describe('backup schedules through troveclient and the workflowv2 endpoint', () => {
  let admin: Login;
  let demo: Login;
  let instance: InstanceView;

  beforeAll(async () => {
    ensureCommand('trove', ['python3-troveclient', 'python3-mistralclient']);
    admin = await login('admin', 'admin');
    demo = await login('demo', 'demo');
    const created = await createInstance(admin, {
      name: `sched-${Date.now()}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'redis', version: '7.0' },
    });
    instance = (await waitForInstance(admin, created.id, healthy, 240_000)) as InstanceView;
  }, 300_000);

  afterAll(async () => {
    if (instance?.id) await call('DELETE', `/v1.0/${admin.projectId}/instances/${instance.id}`, admin.token);
  });

  it('creates, runs, lists and deletes a schedule and its execution with the unmodified CLI', async () => {
    const catalog = (admin.body as { token: { catalog: { type: string; endpoints: { url: string }[] }[] } })
      .token.catalog;
    expect(catalog.find((s) => s.type === 'workflowv2')?.endpoints[0]?.url).toBe(`${api()}/v2`);

    const created = properties(
      await trove(
        'admin',
        'schedule-create',
        instance.id,
        '0 * * * *',
        'hourly',
        '--description',
        'every hour',
      ),
    );
    const scheduleId = created.id!;
    expect(scheduleId).toMatch(/^[0-9a-f-]{36}$/);
    expect(created).toMatchObject({ instance: instance.id, name: 'hourly', pattern: '0 * * * *' });

    const listed = await trove('admin', 'schedule-list', instance.id);
    expect(listed).toContain(scheduleId);
    expect(listed).toContain('0 * * * *');

    const shown = properties(await trove('admin', 'schedule-show', scheduleId));
    expect(shown).toMatchObject({
      id: scheduleId,
      name: 'hourly',
      instance: instance.id,
      pattern: '0 * * * *',
    });
    // The next full hour, in Mistral's format.
    const next = new Date(`${shown.next_execution_time!.replace(' ', 'T')}Z`);
    expect(next.getUTCMinutes()).toBe(0);
    expect(next.getTime() - Date.now()).toBeGreaterThan(0);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(3600_000);
    // The policy the trigger became, on Troveless's own route.
    const policy = await call(
      'GET',
      `/v1.0/${admin.projectId}/instances/${instance.id}/backup_policy`,
      admin.token,
    );
    expect(policy.json?.backup_policy).toMatchObject({ schedule: 'cron(0 * * * ? *)' });

    // The scheduler's clock at that hour: it takes the backup.
    const invoke = lambdaInvoker(cloud().endpoints.lambda);
    const report = (await invoke('troveless-local-backupScheduler', {
      now: new Date(next.getTime() + 60_000).toISOString(),
    })) as { started: string[] };
    expect(report.started).toEqual([`${instance.id}/scheduled-${next.toISOString().slice(0, 16)}Z`]);

    const execution = await waitUntil(
      'the scheduled backup finished',
      async () => {
        const list = (await mistral(admin, 'GET', '/executions')).json?.executions as
          | { id: string; state: string }[]
          | undefined;
        return list?.length === 1 && list[0]!.state !== 'RUNNING' ? list[0] : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    expect(execution.state).toBe('SUCCESS');
    const backup = await call('GET', `/v1.0/${admin.projectId}/backups/${execution.id}`, admin.token);
    expect(backup.json?.backup).toMatchObject({ instance_id: instance.id, status: 'COMPLETED' });

    const executions = await trove('admin', 'execution-list', scheduleId);
    const row = executions.split('\n').find((l) => l.includes(execution.id));
    expect(row).toContain('SUCCESS');
    expect(row).toContain('COMPLETED');

    // Another project: none of it is there.
    expect((await mistral(demo, 'GET', '/cron_triggers')).json).toEqual({ cron_triggers: [] });
    expect((await mistral(demo, 'GET', '/executions')).json).toEqual({ executions: [] });
    expect((await mistral(demo, 'GET', `/cron_triggers/${scheduleId}`)).status).toBe(404);
    expect((await mistral(demo, 'DELETE', `/cron_triggers/${scheduleId}`)).status).toBe(404);
    expect((await mistral(demo, 'DELETE', `/executions/${execution.id}`)).status).toBe(404);
    expect(await failing(trove('demo', 'schedule-show', scheduleId))).toMatch(/Cron trigger not found/);
    expect(
      await failing(openstack('demo', 'database', 'backup', 'execution', 'delete', execution.id)),
    ).toMatch(/Execution not found/);

    // Deleting the execution removes its record, not the backup it took.
    await openstack('admin', 'database', 'backup', 'execution', 'delete', execution.id);
    expect(await trove('admin', 'execution-list', scheduleId)).not.toContain(execution.id);
    expect((await call('GET', `/v1.0/${admin.projectId}/backups/${execution.id}`, admin.token)).status).toBe(
      200,
    );

    await trove('admin', 'schedule-delete', scheduleId);
    expect(await trove('admin', 'schedule-list', instance.id)).not.toContain(scheduleId);
    expect(
      (await call('GET', `/v1.0/${admin.projectId}/instances/${instance.id}/backup_policy`, admin.token))
        .status,
    ).toBe(404);
  });

  it('answers bad input and routes it does not serve as Mistral does, never a 500', async () => {
    const trigger = (over: Record<string, unknown>) => ({
      name: `t-${Date.now()}`,
      workflow_name: 'trove.backup_create',
      pattern: '30 2 * * *',
      workflow_input: JSON.stringify({ instance: instance.id, name: 'x' }),
      ...over,
    });
    const bad = async (body: unknown, status: number, message: RegExp) => {
      const res = await mistral(admin, 'POST', '/cron_triggers', body);
      expect(res.status).toBe(status);
      expect(res.json?.faultstring).toMatch(message);
    };
    await bad(trigger({ pattern: '* * * * *' }), 400, /too frequent/);
    await bad(trigger({ pattern: '0 3 * *' }), 400, /5 fields/);
    await bad(trigger({ pattern: '0 3 1 * 1' }), 400, /not both/);
    await bad(trigger({ workflow_input: '{"instance": ' }), 400, /not valid JSON/);
    await bad(trigger({ workflow_name: 'std.echo' }), 404, /Workflow not found/);
    await bad(
      trigger({ workflow_input: JSON.stringify({ instance: 'no-such-instance' }) }),
      404,
      /cannot be found/,
    );
    await bad('{"name": ', 400, /Malformed/);

    // One schedule per instance: a second is a conflict, not a silent replacement.
    const first = await mistral(admin, 'POST', '/cron_triggers', trigger({ remaining_executions: 2 }));
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ remaining_executions: 2, pattern: '30 2 * * *' });
    await bad(trigger({ name: 'another' }), 409, /already has a backup schedule/);
    expect((await mistral(admin, 'DELETE', `/cron_triggers/${first.json?.name}`)).status).toBe(204);
    expect((await mistral(admin, 'DELETE', `/cron_triggers/${first.json?.name}`)).status).toBe(404);

    // remaining_executions: the scheduler's last run removes the trigger (and its policy), as
    // Mistral deletes a trigger whose executions have run out; the backup it took stays.
    const once = await mistral(
      admin,
      'POST',
      '/cron_triggers',
      trigger({ pattern: '30 * * * *', remaining_executions: 1 }),
    );
    expect(once.status).toBe(201);
    const due = new Date(`${String(once.json?.next_execution_time).replace(' ', 'T')}Z`);
    expect(due.getUTCMinutes()).toBe(30);
    const report = (await lambdaInvoker(cloud().endpoints.lambda)('troveless-local-backupScheduler', {
      now: new Date(due.getTime() + 60_000).toISOString(),
    })) as { started: string[] };
    const name = `scheduled-${due.toISOString().slice(0, 16)}Z`;
    expect(report.started).toEqual([`${instance.id}/${name}`]);
    expect((await mistral(admin, 'GET', `/cron_triggers/${once.json?.name}`)).status).toBe(404);
    expect((await mistral(admin, 'GET', '/cron_triggers')).json).toEqual({ cron_triggers: [] });
    await waitUntil(
      'the last scheduled backup finished',
      async () => {
        const list = (
          await call('GET', `/v1.0/${admin.projectId}/instances/${instance.id}/backups`, admin.token)
        ).json?.backups as { name: string; status: string }[];
        const b = list.find((x) => x.name === name);
        return b && b.status !== 'NEW' && b.status !== 'BUILDING' ? b : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    ).then((b) => expect(b.status).toBe('COMPLETED'));

    expect((await mistral(admin, 'PUT', '/cron_triggers')).status).toBe(405);
    expect((await mistral(admin, 'GET', '/workflows')).status).toBe(501);
    expect((await mistral(admin, 'GET', '/no-such-thing')).status).toBe(404);
    expect((await mistral(admin, 'GET', '/executions?limit=abc')).status).toBe(400);
    const anonymous = await fetch(`${api()}/v2/cron_triggers`);
    expect(anonymous.status).toBe(401);
  });
});
