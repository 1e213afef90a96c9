import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_RUNTIME_ENV } from '../../lib/compute/agent-runtime.ts';
import { call, type Login, login, openstackAuth } from './helpers.ts';
import { endpointFor, redisClient } from './instance-access.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';
import { baseDirOf, guestProcesses, localGuestImage, serverIdOf, signal } from './leftovers.ts';

// Trove's management API for instances: an admin sees a project's instance with its server,
// service status and root history, stops its database, reboots and rebuilds its server.

let admin: Login;
let demo: Login;
let instance: InstanceView;
const mgmt = (path = '') => `/v1.0/${admin.projectId}/mgmt/instances${path}`;

beforeAll(async () => {
  [admin, demo] = await Promise.all([login('admin', 'admin'), login('demo', 'demo')]);
  const created = await createInstance(demo, {
    name: 'mgmt-target',
    flavorRef: '7',
    volume: { size: 1 },
    datastore: { type: 'redis' },
  });
  instance = (await waitForInstance(demo, created.id, healthy)) as InstanceView;
}, 180_000);

afterAll(async () => {
  if (!instance) return;
  await call('DELETE', `/v1.0/${demo.projectId}/instances/${instance.id}`, demo.token);
  await waitForInstance(demo, instance.id, 'gone');
}, 180_000);

describe('/mgmt/instances', () => {
  it('is for admins only (Trove’s 401)', async () => {
    for (const path of ['', `/${instance.id}`, `/${instance.id}/root`]) {
      const res = await call('GET', `/v1.0/${demo.projectId}/mgmt/instances${path}`, demo.token);
      expect([path, res.status, res.json]).toEqual([
        path,
        401,
        { unauthorized: { code: 401, message: 'User does not have admin privileges.' } },
      ]);
    }
  });

  it('lists every project’s instances with the operator’s fields, and shows one in detail', async () => {
    const list = await call('GET', mgmt(), admin.token);
    expect(list.status).toBe(200);
    const item = ((list.json?.instances ?? []) as Record<string, unknown>[]).find(
      (i) => i.id === instance.id,
    );
    expect(item).toMatchObject({
      name: 'mgmt-target',
      status: 'ACTIVE',
      tenant_id: demo.projectId,
      deleted: false,
      deleted_at: null,
      service_status: 'HEALTHY',
      task_description: 'No tasks for the instance.',
      server: { id: expect.any(String), status: 'ACTIVE', tenant_id: demo.projectId },
    });
    const onlyAdmin = await call('GET', mgmt(`?project_id=${admin.projectId}`), admin.token);
    expect(((onlyAdmin.json?.instances ?? []) as { id: string }[]).map((i) => i.id)).not.toContain(
      instance.id,
    );
    expect((await call('GET', mgmt('?deleted=true'), admin.token)).json).toEqual({ instances: [] });

    const shown = await call('GET', mgmt(`/${instance.id}`), admin.token);
    expect(shown.json?.instance).toMatchObject({
      id: instance.id,
      guest_status: { state_description: 'healthy' },
      volume: { size: 1, total: 1 },
      server: { addresses: [expect.objectContaining({ address: expect.any(String) })] },
    });
    const root = await call('GET', mgmt(`/${instance.id}/root`), admin.token);
    expect(root.json).toEqual({ root_history: { id: instance.id, enabled: 'Never', user: 'Nobody' } });
    expect((await call('GET', mgmt('/00000000-0000-4000-8000-000000000000'), admin.token)).status).toBe(404);
  });

  it('stops the database, then reboots it back to HEALTHY; refuses what does not apply', async () => {
    const stop = await call('POST', mgmt(`/${instance.id}/action`), admin.token, { stop: {} });
    expect(stop.status, stop.text).toBe(202);
    // As in Trove, the server stays ACTIVE: the guest reports its database shut down.
    await waitForInstance(
      demo,
      instance.id,
      (i) => i.status === 'ACTIVE' && i.operating_status === 'SHUTDOWN',
      60_000,
    );
    const shown = await call('GET', mgmt(`/${instance.id}`), admin.token);
    expect(shown.json?.instance).toMatchObject({
      service_status: 'SHUTDOWN',
      guest_status: { state_description: 'shutdown' },
    });
    const reboot = await call('POST', mgmt(`/${instance.id}/action`), admin.token, { reboot: {} });
    expect(reboot.status, reboot.text).toBe(202);
    await waitForInstance(demo, instance.id, healthy, 90_000);

    for (const [body, message] of [
      [{ migrate: {} }, 'No other compute host to migrate the instance to.'],
      [{ frobnicate: {} }, 'Invalid instance action: frobnicate'],
      [{ stop: {}, reboot: {} }, 'Only one action can be specified per request.'],
    ] as const) {
      const res = await call('POST', mgmt(`/${instance.id}/action`), admin.token, body);
      expect([res.status, res.json]).toEqual([400, { badRequest: { code: 400, message } }]);
    }
    const reset = await call('POST', mgmt(`/${instance.id}/action`), admin.token, {
      'reset-task-status': {},
    });
    expect(reset.status).toBe(202);
  });

  it('reboots the server, not just the engine: a hung agent and its engine are replaced', async () => {
    const serverId = await serverIdOf(instance.id);
    expect(serverId).toBeDefined();
    const baseDir = baseDirOf(serverId as string);
    const before = guestProcesses(baseDir);
    expect(before.agent.length).toBeGreaterThan(0);
    expect(before.engine.length).toBeGreaterThan(0);
    // The agent hangs (SIGSTOP): a restart, which asks the guest, could not cure it; a reboot does.
    expect(signal(before.agent, 'SIGSTOP')).toBe(before.agent.length);
    // The admin's CLI: `openstack database instance reboot` (troveclient's mgmt reboot).
    await promisify(execFile)(
      'openstack',
      [...openstackAuth(), 'database', 'instance', 'reboot', instance.id],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        timeout: 60_000,
      },
    );
    const during = await call('GET', `/v1.0/${demo.projectId}/instances/${instance.id}`, demo.token);
    expect((during.json?.instance as InstanceView | undefined)?.status).toBe('REBOOT');
    const back = await waitForInstance(demo, instance.id, healthy, 120_000);
    expect(back?.fault).toBeUndefined();
    const after = guestProcesses(baseDir);
    expect(after.agent.length).toBeGreaterThan(0);
    expect(after.engine.length).toBeGreaterThan(0);
    expect(after.agent.filter((pid) => before.agent.includes(pid))).toEqual([]);
    expect(after.engine.filter((pid) => before.engine.includes(pid))).toEqual([]);
    // Same server, same address: a reboot is not a rebuild.
    expect(await serverIdOf(instance.id)).toBe(serverId);
  }, 180_000);

  it('rebuilds the server from the image: a fresh agent from it on the same volume, data kept', async () => {
    const serverId = (await serverIdOf(instance.id)) as string;
    const baseDir = baseDirOf(serverId);
    const at = await endpointFor(demo, instance);
    const before = await redisClient(at);
    await before.set('kept', 'across the rebuild');
    await before.save();
    before.disconnect();
    const image = await localGuestImage();
    const action = (who: Login, body: object) =>
      call('POST', `/v1.0/${who.projectId}/mgmt/instances/${instance.id}/action`, who.token, body);

    // Admins only (Trove's 401 on every mgmt route), and Trove's schema: image_id, a uuid.
    expect((await action(demo, { rebuild: { image_id: image } })).status).toBe(401);
    for (const body of [{ rebuild: { image_id: 'not-an-image' } }, { rebuild: {} }]) {
      const res = await action(admin, body);
      expect([res.status, res.text]).toEqual([400, expect.stringContaining('Validation error: rebuild')]);
    }
    // A well-formed id of no image: Nova's message as the fault, checked before anything stopped.
    const agent = guestProcesses(baseDir).agent;
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await action(admin, { rebuild: { image_id: unknown } })).status).toBe(202);
    const refused = await waitForInstance(demo, instance.id, (i) => Boolean(i.fault) && healthy(i), 30_000);
    expect(refused?.fault).toMatchObject({ message: `Image ${unknown} could not be found.` });
    expect(guestProcesses(baseDir).agent).toEqual(agent);

    // The admin's CLI: `openstack database instance rebuild <instance> <image>`.
    await promisify(execFile)(
      'openstack',
      [...openstackAuth(), 'database', 'instance', 'rebuild', instance.id, image],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 },
    );
    // Shown as Trove shows its rebuild (task BUILDING), and no other action meanwhile (422).
    const during = await call('GET', `/v1.0/${demo.projectId}/instances/${instance.id}`, demo.token);
    expect((during.json?.instance as InstanceView | undefined)?.status).toBe('BUILD');
    expect((await action(admin, { rebuild: { image_id: image } })).status).toBe(422);

    const back = await waitForInstance(demo, instance.id, healthy, 60_000);
    expect(back?.fault).toBeUndefined();
    const shown = await call('GET', mgmt(`/${instance.id}`), admin.token);
    expect(shown.json?.instance).toMatchObject({ task_description: 'No tasks for the instance.' });
    // A new agent process, run from the image's copy on the server's own root; same server.
    const after = guestProcesses(baseDir).agent;
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((pid) => agent.includes(pid))).toEqual([]);
    const cmdline = readFileSync(`/proc/${after[0]}/cmdline`, 'utf8');
    expect(cmdline).toContain(`/compute/roots/${serverId}/main.mjs`);
    // Started again with the runtime settings every agent runs with (its memory while it backs up).
    const environ = readFileSync(`/proc/${after[0]}/environ`, 'utf8').split('\0');
    for (const [name, value] of Object.entries(AGENT_RUNTIME_ENV))
      expect(environ).toContain(`${name}=${value}`);
    expect(await serverIdOf(instance.id)).toBe(serverId);
    const r = await redisClient(at);
    expect(await r.get('kept')).toBe('across the rebuild');
    r.disconnect();
  }, 120_000);
});
