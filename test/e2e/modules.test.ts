import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { api, call, cloud, type Login, login, openstackAuth } from './helpers.ts';
import { healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';
import { baseDirOf, dynamo, serverIdOf } from './leftovers.ts';

const run = promisify(execFile);

// Trove's modules end to end (issue 14) with python-troveclient's own `trove module-*` commands
// (its OpenStack-client plugin has no `database module` commands): a module is made, applied to a
// Redis instance, where the guest writes its contents and runs Trove's ping driver, queried,
// refused deletion while applied, removed and deleted. Another project sees none of it.

let admin: Login;
let demo: Login;
let other: Login;
let instance: InstanceView;
let dir: string;
let bootId: string;

/** `trove --json <args>` as a user; the project is the user's own. */
async function trove(user: string, project: string, ...args: string[]) {
  const auth = [
    '--os-auth-url',
    `${api()}/v3`,
    '--os-username',
    user,
    '--os-password',
    user === 'modules-other' ? 'Other-pass-1' : user,
    '--os-project-name',
    project,
    '--os-user-domain-id',
    'default',
    '--os-project-domain-id',
    'default',
    '--os-region-name',
    'RegionOne',
  ];
  return run('trove', [...auth, '--json', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 90_000,
  });
}
const asDemo = (...args: string[]) => trove('demo', 'demo', ...args);

/** `openstack database ...` as demo (instance create takes `--module`). */
function openstackAsDemo(...args: string[]) {
  const flags = openstackAuth('demo');
  return run('openstack', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 90_000,
  });
}
const asAdmin = (...args: string[]) => trove('admin', 'admin', ...args);
const json = async (p: Promise<{ stdout: string }>) => JSON.parse((await p).stdout);

/** A command the API refuses: the CLI's error line, which carries Trove's message and status. */
async function refused(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: { stderr?: string; stdout?: string }) => e,
  );
  expect(err, 'the command should have failed').toBeDefined();
  return `${err?.stderr ?? ''}${err?.stdout ?? ''}`;
}

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const modules = (who: Login) => `/v1.0/${who.projectId}/modules`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'troveless-modules-'));
  await run(
    process.execPath,
    ['--import', 'tsx', 'local/identity-user.ts', 'modules-other', 'Other-pass-1', 'modules-other', 'member'],
    { cwd: resolve(import.meta.dirname, '../..'), env: { ...process.env, ...cloud().env } },
  );
  [admin, demo, other] = await Promise.all([
    login('admin', 'admin'),
    login('demo', 'demo'),
    login('modules-other', 'Other-pass-1'),
  ]);
  // A module given at create is applied by prepare (Trove's `instance create --module`).
  const boot = await call('POST', modules(demo), demo.token, {
    module: {
      name: 'boot',
      module_type: 'ping',
      contents: Buffer.from('message=applied at prepare').toString('base64'),
    },
  });
  bootId = (boot.json as { module: { id: string } }).module.id;
  const created = JSON.parse(
    (
      await openstackAsDemo(
        'database',
        'instance',
        'create',
        'modules-target',
        '--flavor',
        '7',
        '--size',
        '1',
        '--datastore',
        'redis',
        '--module',
        'boot',
        '-f',
        'json',
      )
    ).stdout,
  ) as { id: string };
  instance = (await waitForInstance(demo, created.id, healthy)) as InstanceView;
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (!instance) return;
  await call('DELETE', `/v1.0/${demo.projectId}/instances/${instance.id}`, demo.token);
  await waitForInstance(demo, instance.id, 'gone');
  // The deleted instance took its module records with it: the module may go now.
  expect((await call('DELETE', `${modules(demo)}/${bootId}`, demo.token)).status).toBe(200);
}, 180_000);

describe('modules', () => {
  const text = 'message=hello from troveless\n';
  let moduleId: string;

  it('module-create makes a project module of the ping type, its contents kept encrypted', async () => {
    const path = await file('ping.dat', text);
    const created = await json(asDemo('module-create', 'greeting', 'ping', path, '--datastore', 'redis'));
    moduleId = created.id;
    expect(created).toMatchObject({
      name: 'greeting',
      type: 'ping',
      datastore: 'redis',
      datastore_version: 'all',
      tenant: demo.projectId,
      tenant_id: demo.projectId,
      auto_apply: false,
      visible: true,
      is_admin: false,
      live_update: false,
      apply_order: 5,
      md5: createHash('md5').update(Buffer.from(text).toString('base64')).digest('hex'),
    });
    // Nothing in the table reads as the contents, in the clear or in base64.
    const stored = await dynamo().send(new ScanCommand({ TableName: 'troveless-local-modules' }));
    const dump = JSON.stringify(stored.Items);
    expect(dump).toContain(moduleId);
    expect(dump).not.toContain('hello from troveless');
    expect(dump).not.toContain(Buffer.from(text).toString('base64'));
  });

  it('module-list and module-show show it to its project; show counts no instance yet', async () => {
    const listed = await json(asDemo('module-list'));
    expect(listed.map((m: { name: string }) => m.name)).toContain('greeting');
    const shown = await json(asDemo('module-show', 'greeting'));
    expect(shown).toMatchObject({ id: moduleId, instance_count: 0 });
  });

  it("refuses bad input with Trove's faults, and writes nothing", async () => {
    const b64 = Buffer.from(text).toString('base64');
    const cases: [object, number, string][] = [
      [{ name: 'x', module_type: 'shell', contents: b64 }, 404, "Module type 'shell' was not found."],
      [
        { name: 'greeting', module_type: 'ping', contents: b64, datastore: { type: 'redis' } },
        400,
        "A module with the name 'greeting' already exists for datastore",
      ],
      [
        { name: 'x', module_type: 'ping', contents: b64, all_tenants: 1 },
        403,
        'You must be admin to create a module with these options. (Tenant: all)',
      ],
      [
        { name: 'x', module_type: 'ping', contents: b64, auto_apply: 1, visible: 0 },
        403,
        'You must be admin to create a module with these options. (Auto: 1, Visible: 0)',
      ],
      [
        { name: 'x', module_type: 'ping', contents: b64, datastore: { type: 'nosuch' } },
        404,
        "Datastore 'nosuch' cannot be found.",
      ],
      [
        { name: 'x', module_type: 'ping', contents: b64, datastore: { version: '7' } },
        400,
        "Datastore 'None' has no version '7'.",
      ],
      [
        { name: 'x', module_type: 'ping', contents: 'not base64!' },
        400,
        "Validation error: module['contents'] must be base64",
      ],
      [{ name: 'x', module_type: 'ping', contents: b64, apply_order: 12 }, 400, 'Validation error'],
    ];
    for (const [module, status, message] of cases) {
      const res = await call('POST', modules(demo), demo.token, { module });
      expect(res.status, JSON.stringify(module)).toBe(status);
      const fault = Object.values(res.json ?? {})[0] as { message: string };
      expect(fault.message).toContain(message);
    }
    const names = (
      ((await call('GET', modules(demo), demo.token)).json?.modules ?? []) as { name: string }[]
    ).map((m) => m.name);
    expect(names.filter((n) => n === 'x')).toEqual([]);
    const admins = await call('POST', modules(admin), admin.token, {
      module: { name: 'x', module_type: 'ping', contents: b64, auto_apply: 1, full_access: 1 },
    });
    expect(admins.status).toBe(400);
    expect(admins.json).toEqual({
      badRequest: {
        code: 400,
        message: 'The following values are invalid: Cannot make module full access: (Auto: 1).',
      },
    });
  });

  it('module-apply runs the ping driver on the guest, which keeps the contents for itself alone', async () => {
    const applied = await json(asDemo('module-apply', instance.id, 'greeting'));
    expect(applied).toEqual([
      expect.objectContaining({
        name: 'greeting',
        type: 'ping',
        datastore: 'redis',
        status: 'OK',
        message: 'hello from troveless',
      }),
    ]);
    const serverId = await serverIdOf(instance.id);
    const moduleDir = join(baseDirOf(serverId ?? ''), 'modules', 'ping', moduleId);
    expect(await readFile(join(moduleDir, 'contents.dat'), 'utf8')).toBe(text);
    expect((await stat(join(moduleDir, 'contents.dat'))).mode & 0o777).toBe(0o600);
    expect((await stat(moduleDir)).mode & 0o777).toBe(0o700);
  });

  it('module-query and module-list-instance show what the guest applied; module-instances the instance', async () => {
    const queried = await json(asDemo('module-query', instance.id));
    // Newest first: the module applied now, then the one prepare applied.
    expect(queried).toEqual([
      expect.objectContaining({ id: moduleId, status: 'OK', message: 'hello from troveless', removed: null }),
      expect.objectContaining({ id: bootId, name: 'boot', status: 'OK', message: 'applied at prepare' }),
    ]);
    const listed = await json(asDemo('module-list-instance', instance.id));
    expect(listed.map((m: { id: string }) => m.id)).toEqual([moduleId, bootId]);
    expect((await json(asDemo('module-instances', 'boot'))).map((i: { id: string }) => i.id)).toEqual([
      instance.id,
    ]);
    const instances = await json(asDemo('module-instances', 'greeting'));
    expect(instances.map((i: { id: string }) => i.id)).toEqual([instance.id]);
    expect(await json(asDemo('module-show', 'greeting'))).toMatchObject({ instance_count: 1 });
    const counts = await json(asDemo('module-instance-count', 'greeting'));
    expect(counts).toEqual([expect.objectContaining({ instance_count: 1, current: true })]);
  });

  it('refuses to delete or change a module while an instance has it, as Trove', async () => {
    const message =
      "A module cannot be deleted or its contents modified if it has been applied to a non-terminated instance, unless the module has been marked as 'live_update.'";
    expect(await refused(asDemo('module-delete', 'greeting'))).toContain(message);
    const changed = await file('changed.dat', 'message=changed\n');
    expect(await refused(asDemo('module-update', 'greeting', '--file', changed))).toContain(message);
    expect((await json(asDemo('module-show', 'greeting'))).md5).toBe(
      createHash('md5').update(Buffer.from(text).toString('base64')).digest('hex'),
    );
  });

  it('another project neither sees, shows nor applies a project module; all-tenant modules reach everyone', async () => {
    const path = await file('private.dat', 'message=private\n');
    const own = await json(trove('modules-other', 'modules-other', 'module-create', 'private', 'ping', path));
    // demo cannot see other's module, nor find it to apply; the API drops an id it may not use.
    expect((await json(asDemo('module-list'))).map((m: { id: string }) => m.id)).not.toContain(own.id);
    expect((await call('GET', `${modules(demo)}/${own.id}`, demo.token)).json).toEqual({
      itemNotFound: { code: 404, message: `Module with ID ${own.id} could not be found.` },
    });
    expect(await refused(asDemo('module-apply', instance.id, own.id))).toContain(own.id);
    const direct = await call(
      'POST',
      `/v1.0/${demo.projectId}/instances/${instance.id}/modules`,
      demo.token,
      {
        modules: [{ id: own.id }],
      },
    );
    expect(direct.status).toBe(200);
    expect(direct.json).toEqual({ modules: [] });
    // and other cannot reach demo's module or instance at all.
    expect((await call('GET', `${modules(other)}/${moduleId}`, other.token)).status).toBe(404);
    expect(
      (await call('GET', `/v1.0/${demo.projectId}/instances/${instance.id}/modules`, other.token)).status,
    ).toBe(403);
    // An admin's module for all tenants is listed to both; a hidden one to neither.
    const shared = await file('shared.dat', 'message=shared\n');
    const pub = await json(asAdmin('module-create', 'everyone', 'ping', shared, '--all_tenants'));
    const hidden = await json(
      asAdmin('module-create', 'hidden', 'ping', shared, '--all_tenants', '--hidden'),
    );
    expect(pub).toMatchObject({ tenant: 'all', tenant_id: null, is_admin: true });
    for (const who of [demo, other]) {
      const ids = (
        ((await call('GET', modules(who), who.token)).json?.modules ?? []) as { id: string }[]
      ).map((m) => m.id);
      expect(ids).toContain(pub.id);
      expect(ids).not.toContain(hidden.id);
    }
    expect(await refused(asDemo('module-delete', 'everyone'))).toContain(
      'You must be admin to delete a module with these options. (Tenant: all)',
    );
    await asAdmin('module-delete', hidden.id);
    await asAdmin('module-delete', pub.id);
    await trove('modules-other', 'modules-other', 'module-delete', own.id);
  });

  it("module-reapply sends a live_update module's new contents to the instance that has it", async () => {
    const md5Of = (t: string) => createHash('md5').update(Buffer.from(t).toString('base64')).digest('hex');
    const first = 'message=first contents\n';
    const second = 'message=second contents\n';
    const live = await json(
      asDemo(
        'module-create',
        'live',
        'ping',
        await file('live.dat', first),
        '--datastore',
        'redis',
        '--live_update',
      ),
    );
    await asDemo('module-apply', instance.id, 'live');
    const counts = `${modules(demo)}/${live.id}/instances?count_only=true`;
    const countRows = async () =>
      ((await call('GET', counts, demo.token)).json?.instances ?? []) as {
        module_md5: string;
        current: boolean;
      }[];
    expect(await countRows()).toEqual([expect.objectContaining({ module_md5: md5Of(first), current: true })]);

    const updated = await json(asDemo('module-update', 'live', '--file', await file('live2.dat', second)));
    expect(updated.md5).toBe(md5Of(second));
    // The instance still has the old contents: its record says so, until the reapply.
    expect(await countRows()).toEqual([
      expect.objectContaining({ module_md5: md5Of(first), current: false }),
    ]);

    // python-troveclient's own command, unmodified: PUT /modules/{id}/instances, 202.
    await asDemo('module-reapply', 'live');
    // The record moves to the new md5 once the guest has applied it.
    await waitUntil(
      'the reapplied md5 on the instance record',
      async () => {
        const rows = await countRows();
        return rows.length === 1 && rows[0]?.module_md5 === md5Of(second) ? rows : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(await countRows()).toEqual([
      expect.objectContaining({ module_md5: md5Of(second), instance_count: 1, current: true }),
    ]);
    const queried = await json(asDemo('module-query', instance.id));
    expect(queried).toContainEqual(
      expect.objectContaining({ id: live.id, md5: md5Of(second), status: 'OK', message: 'second contents' }),
    );
    const serverId = await serverIdOf(instance.id);
    expect(
      await readFile(join(baseDirOf(serverId ?? ''), 'modules', 'ping', live.id, 'contents.dat'), 'utf8'),
    ).toBe(second);

    // A reapply the guest refuses (a type it has no driver for) is kept on that instance: its
    // module shows ERROR with the guest's words, and the instance keeps the md5 it has.
    const third = 'message=third contents\n';
    await asDemo(
      'module-update',
      'live',
      '--type',
      'new_relic_license',
      '--file',
      await file('live3.dat', third),
    );
    await asDemo('module-reapply', 'live');
    const failed = await waitUntil(
      'the failed reapply on the module status',
      async () => {
        const mods = (
          await call('GET', `/v1.0/${demo.projectId}/instances/${instance.id}/modules`, demo.token)
        ).json?.modules as { id: string; status: string; md5: string; message: string }[] | undefined;
        const mod = mods?.find((m) => m.id === live.id);
        return mod?.status === 'ERROR' ? mod : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(failed.md5).toBe(md5Of(second));
    expect(failed.message).toContain(`Reapply of md5 ${md5Of(third)} failed`);
    expect(failed.message).toContain("No driver implemented for module type 'new_relic_license'");
    expect(await countRows()).toEqual([
      expect.objectContaining({ module_md5: md5Of(second), instance_count: 1, current: false }),
    ]);

    await asDemo('module-update', 'live', '--type', 'ping');
    await asDemo('module-remove', instance.id, 'live');
    await asDemo('module-delete', 'live');
  });

  it("refuses a bad reapply with Trove's faults, and changes nothing", async () => {
    const reapply = (who: Login, id: string, body: unknown) =>
      call('PUT', `${modules(who)}/${id}/instances`, who.token, body as object);
    const cases: [Login, string, unknown, number, string][] = [
      [demo, moduleId, { reapply: { batch_size: 'ten' } }, 400, "Validation error: reapply['batch_size']"],
      [demo, moduleId, { reapply: { force: 2 } }, 400, "Validation error: reapply['force']"],
      [demo, moduleId, { md5: 'x' }, 400, 'Validation error: reapply'],
      [demo, 'no-such-module', { reapply: {} }, 404, 'Module with ID no-such-module could not be found.'],
      // Another project's module is one it cannot find.
      [other, moduleId, { reapply: { force: 1 } }, 404, `Module with ID ${moduleId} could not be found.`],
    ];
    for (const [who, id, body, status, message] of cases) {
      const res = await reapply(who, id, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((Object.values(res.json ?? {})[0] as { message: string }).message).toContain(message);
    }
    expect(await refused(asDemo('module-reapply', 'no-such-module'))).toContain('no-such-module');
    // The instance still has the module at the md5 it had, untouched.
    const rows = (await call('GET', `${modules(demo)}/${moduleId}/instances?count_only=true`, demo.token))
      .json?.instances;
    expect(rows).toEqual([expect.objectContaining({ instance_count: 1, current: true })]);
  });

  it('module-remove takes it off the guest; then it can be changed and deleted', async () => {
    await asDemo('module-remove', instance.id, 'greeting');
    expect((await json(asDemo('module-query', instance.id))).map((m: { id: string }) => m.id)).toEqual([
      bootId,
    ]);
    expect(await json(asDemo('module-instances', 'greeting'))).toEqual([]);
    const again = await call(
      'DELETE',
      `/v1.0/${demo.projectId}/instances/${instance.id}/modules/${moduleId}`,
      demo.token,
    );
    expect(again.status).toBe(400);
    expect(JSON.stringify(again.json)).toContain("Module 'greeting' has not been applied");
    const changed = await file('changed.dat', 'message=changed\n');
    const updated = await json(
      asDemo('module-update', 'greeting', '--file', changed, '--description', 'new'),
    );
    expect(updated).toMatchObject({
      description: 'new',
      md5: createHash('md5').update(Buffer.from('message=changed\n').toString('base64')).digest('hex'),
    });
    await asDemo('module-delete', 'greeting');
    expect((await call('GET', `${modules(demo)}/${moduleId}`, demo.token)).status).toBe(404);
  });
});
