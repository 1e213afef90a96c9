import { DescribeExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login } from './helpers.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';
import {
  baseDirOf,
  deleteAndCheck,
  executionArn,
  expectNothingLeft,
  guestProcesses,
  serverIdOf,
  sfn,
  signal,
  viewOf,
} from './leftovers.ts';

// A record whose workflow is gone (lost to a restart, stopped, never started) is never stuck: its
// owner deletes it without an admin, and nothing of it is left. Stopping the execution here
// stands for any way of losing it: the API sees the same thing, a record no execution will finish.

let demo: Login;

beforeAll(async () => {
  demo = await login('demo', 'demo');
});

const path = () => `/v1.0/${demo.projectId}`;

async function inUse(resource: string): Promise<number> {
  const res = await call('GET', `${path()}/mgmt/quotas/${demo.projectId}`, demo.token);
  const quotas = res.json?.quotas as { resource: string; in_use: number }[];
  return quotas.find((q) => q.resource === resource)?.in_use ?? Number.NaN;
}

async function healthyInstance(name: string, engine: string): Promise<InstanceView> {
  const created = await createInstance(demo, {
    name,
    flavorRef: '7',
    volume: { size: 1 },
    datastore: { type: engine },
  });
  return (await waitForInstance(demo, created.id, healthy)) as InstanceView;
}

async function backupStatus(id: string): Promise<string | undefined> {
  const res = await call('GET', `${path()}/backups/${id}`, demo.token);
  return (res.json?.backup as { status?: string } | undefined)?.status;
}

/** Freezes (SIGSTOP) or thaws (SIGCONT) the guest agent, so a step waiting on it cannot finish. */
async function agent(instanceId: string, sig: 'SIGSTOP' | 'SIGCONT') {
  const serverId = await serverIdOf(instanceId);
  if (!serverId) throw new Error(`instance ${instanceId} has no server`);
  expect(signal(guestProcesses(baseDirOf(serverId)).agent, sig)).toBeGreaterThan(0);
}

async function stopWorkflow(workflow: string, name: string) {
  const arn = await executionArn(workflow, name);
  await sfn().send(new StopExecutionCommand({ executionArn: arn }));
  const { status } = await sfn().send(new DescribeExecutionCommand({ executionArn: arn }));
  expect(status).toBe('ABORTED');
}

describe('an instance whose create workflow is gone', () => {
  it('stays BUILD, and its owner can delete it without an admin; nothing is left', async () => {
    const before = await inUse('instances');
    const created = await createInstance(demo, {
      name: 'orphan-build',
      flavorRef: '7',
      volume: { size: 1 },
      // MariaDB's init takes seconds: the build is still running when its workflow is stopped.
      datastore: { type: 'mysql' },
    });
    // The create is refused deletion while its workflow runs (Trove's 422 in BUILD)...
    const early = await call('DELETE', `${path()}/instances/${created.id}`, demo.token);
    const refusal = `Instance ${created.id} is not ready. (Status is BUILD).`;
    expect([early.status, early.json]).toEqual([
      422,
      { unprocessableEntity: { code: 422, message: refusal } },
    ]);
    // ...and once the workflow is gone, nothing will ever finish the build.
    await stopWorkflow('instance-create', created.id);
    const view = await viewOf(demo, created.id);
    expect(view !== 'gone' && view.status).toBe('BUILD');
    // Trove's API saves a refused delete as the instance's fault, which later GETs show.
    expect(view !== 'gone' && view.fault).toEqual({ message: refusal, created: expect.any(String) });
    await deleteAndCheck(demo, created.id);
    expect(await inUse('instances')).toBe(before);
  });
});

describe('an instance whose delete workflow is gone', () => {
  it('stays in its delete, and its owner deletes it again; quota released once, nothing is left', async () => {
    const before = await inUse('instances');
    const instance = await healthyInstance('orphan-deleting', 'postgresql');
    const serverId = await serverIdOf(instance.id);
    // A frozen guest holds the delete in its first step (stop the database)...
    await agent(instance.id, 'SIGSTOP');
    try {
      const first = await call('DELETE', `${path()}/instances/${instance.id}`, demo.token);
      expect(first.status, first.text).toBe(202);
      // ...while its workflow is lost.
      await stopWorkflow('instance-delete', `delete-${instance.id}`);
    } finally {
      await agent(instance.id, 'SIGCONT');
    }
    const stuck = await viewOf(demo, instance.id);
    expect(stuck !== 'gone' && stuck.status).toBe('SHUTDOWN');
    expect(await inUse('instances')).toBe(before);

    const again = await call('DELETE', `${path()}/instances/${instance.id}`, demo.token);
    expect(again.status, again.text).toBe(202);
    await waitForInstance(demo, instance.id, 'gone', 180_000);
    await expectNothingLeft(instance.id, demo.projectId, serverId);
    expect(await inUse('instances')).toBe(before);
  });
});

describe('a backup whose workflow is gone', () => {
  it('can be deleted by its owner while BUILDING; nothing of it is left, and the instance backs up again', async () => {
    const backupsBefore = await inUse('backups');
    const instance = await healthyInstance('orphan-backup', 'redis');
    let orphan = '';
    // A frozen guest holds the backup in BUILDING...
    await agent(instance.id, 'SIGSTOP');
    try {
      const started = await call('POST', `${path()}/backups`, demo.token, {
        backup: { name: 'orphan', instance: instance.id },
      });
      expect(started.status, started.text).toBe(202);
      orphan = (started.json as { backup: { id: string } }).backup.id;
      await waitUntil(
        `backup ${orphan} BUILDING`,
        async () => {
          return (await backupStatus(orphan)) === 'BUILDING' ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      // ...and its workflow is lost: the backup would be BUILDING forever.
      await stopWorkflow('backup-create', orphan);
      expect(await backupStatus(orphan)).toBe('BUILDING');

      const deleted = await call('DELETE', `${path()}/backups/${orphan}`, demo.token);
      expect(deleted.status, deleted.text).toBe(202);
      expect((await call('GET', `${path()}/backups/${orphan}`, demo.token)).status).toBe(404);
      const list = await call('GET', `${path()}/backups`, demo.token);
      expect((list.json as { backups: { id: string }[] }).backups.map((b) => b.id)).not.toContain(orphan);
      expect(await inUse('backups')).toBe(backupsBefore);
    } finally {
      await agent(instance.id, 'SIGCONT');
    }

    // The instance is free again: a new backup runs to COMPLETED (after the guest has dealt with
    // the order of the lost one, which it received before the new one).
    const next = await call('POST', `${path()}/backups`, demo.token, {
      backup: { name: 'after-orphan', instance: instance.id },
    });
    expect(next.status, next.text).toBe(202);
    const nextId = (next.json as { backup: { id: string } }).backup.id;
    const done = await waitUntil(
      `backup ${nextId} to finish`,
      async () => {
        const status = await backupStatus(nextId);
        return ['COMPLETED', 'FAILED'].includes(status ?? '') ? status : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 300 },
    );
    expect(done).toBe('COMPLETED');
    // Deleting the instance and the new backup leaves nothing: not the lost backup's object either.
    await deleteAndCheck(demo, instance.id, nextId);
    expect(await inUse('backups')).toBe(backupsBefore);
  });
});
