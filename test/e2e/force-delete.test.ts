import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { totalmem } from 'node:os';
import { promisify } from 'node:util';
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login, openstackAuth } from './helpers.ts';
import { createInstance, healthy, waitForInstance } from './instance-helpers.ts';
import {
  baseDirOf,
  executionArn,
  expectNothingLeft,
  guestProcesses,
  serverIdOf,
  serversOf,
  sfn,
  signal,
  viewOf,
} from './leftovers.ts';

// The admin's `openstack database instance force delete` (python-troveclient: reset_status, then
// delete) from any state (issue 13 item 4): a build still running is stopped, then everything the
// instance had goes, and nothing of it is left anywhere (process, mount, directory, queue, item).

const run = promisify(execFile);

function forceDelete(id: string) {
  const flags = openstackAuth();
  return run('openstack', [...flags, 'database', 'instance', 'force', 'delete', id], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 60_000,
  });
}

const gone = (who: Login, id: string) =>
  waitUntil(`instance ${id} gone`, async () => ((await viewOf(who, id)) === 'gone' ? true : undefined), {
    timeoutMs: 120_000,
    intervalMs: 500,
  });

describe('force delete (admin)', () => {
  let admin: Login;
  beforeAll(async () => {
    admin = await login('admin', 'admin');
  });

  it('deletes a build in progress: its workflow stops, its server goes, nothing is left', async () => {
    const created = await createInstance(admin, {
      name: 'force-build',
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'postgresql' },
    });
    // Its server exists and the build still runs: the delete lands in the middle of it.
    const serverId = await waitUntil(
      'the build to launch its server',
      async () => (await serverIdOf(created.id)) ?? undefined,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // Its agent hangs (SIGSTOP) before it can answer prepare, so the build is still running when the
    // delete lands, however fast the engine starts and however slow the CLI is to start.
    const { agent } = guestProcesses(baseDirOf(serverId));
    expect(signal(agent, 'SIGSTOP')).toBeGreaterThan(0);
    try {
      const before = await viewOf(admin, created.id);
      expect(before !== 'gone' && before.status).toBe('BUILD');
      await forceDelete(created.id);
    } finally {
      // The delete has landed; the guest wakes (a slow guest, not a dead one): its late answer to
      // prepare must not bring the build back, and the delete need not wait out a hung agent.
      signal(agent, 'SIGCONT');
    }
    await gone(admin, created.id);
    const build = await sfn().send(
      new DescribeExecutionCommand({ executionArn: await executionArn('instance-create', created.id) }),
    );
    expect(build.status).toBe('ABORTED');
    expect(await serversOf(created.id)).toEqual([]);
    await expectNothingLeft(created.id, admin.projectId, serverId);
  });

  it('deletes an instance in ERROR: nothing of it is left', async () => {
    // A flavor of four times the machine's memory: MariaDB cannot map a buffer pool that size.
    const flavorId = `e2e-huge-${randomBytes(3).toString('hex')}`;
    const ram = Math.ceil((totalmem() / 1024 / 1024) * 4);
    const made = await call('POST', `/v1.0/${admin.projectId}/mgmt/flavors`, admin.token, {
      flavor: { id: flavorId, name: flavorId, ram, vcpus: 1, disk: 1 },
    });
    expect(made.status).toBe(202);
    try {
      const created = await createInstance(admin, {
        name: 'force-error',
        flavorRef: flavorId,
        volume: { size: 1 },
        datastore: { type: 'mysql' },
      });
      const failed = await waitForInstance(admin, created.id, (i) => i.status === 'ERROR');
      expect(failed?.fault?.message).toBeTruthy();
      const serverId = await serverIdOf(created.id);
      // The CLI's `instance reset status` on its own (Trove's reset_status, the first half of a
      // force delete): the failed build's task is cleared, as the operator's view shows.
      const task = async () => {
        const res = await call('GET', `/v1.0/${admin.projectId}/mgmt/instances/${created.id}`, admin.token);
        return (res.json?.instance as { task_description?: string } | undefined)?.task_description;
      };
      expect(await task()).not.toBe('No tasks for the instance.');
      await run('openstack', [...openstackAuth(), 'database', 'instance', 'reset', 'status', created.id], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        timeout: 60_000,
      });
      expect(await task()).toBe('No tasks for the instance.');
      await forceDelete(created.id);
      await gone(admin, created.id);
      expect(await serversOf(created.id)).toEqual([]);
      await expectNothingLeft(created.id, admin.projectId, serverId);
    } finally {
      await call('DELETE', `/v1.0/${admin.projectId}/mgmt/flavors/${flavorId}`, admin.token);
    }
  });

  it('deletes an instance in the middle of a resize', async () => {
    const created = await createInstance(admin, {
      name: 'force-resize',
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'redis' },
    });
    await waitForInstance(admin, created.id, healthy);
    const serverId = await serverIdOf(created.id);
    const resize = await call(
      'POST',
      `/v1.0/${admin.projectId}/instances/${created.id}/action`,
      admin.token,
      {
        resize: { flavorRef: '8' },
      },
    );
    expect(resize.status, resize.text).toBe(202);
    const during = await viewOf(admin, created.id);
    expect(during !== 'gone' && during.status).toBe('RESIZE');

    await forceDelete(created.id);
    await gone(admin, created.id);
    expect(await serversOf(created.id)).toEqual([]);
    await expectNothingLeft(created.id, admin.projectId, serverId);
  });
});
