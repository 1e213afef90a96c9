import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login, openstackAuth } from './helpers.ts';

const run = promisify(execFile);

// The real clients: python-openstackclient with the Trove plugin, through the password flow
// against our Keystone endpoint, exactly as the README tells users to run them.
function openstackAs(password: string, ...args: string[]) {
  const flags = openstackAuth('admin', password);
  return run('openstack', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 60_000,
  });
}
const openstack = (...args: string[]) => openstackAs('admin', ...args);
const json = async (...args: string[]) => JSON.parse((await openstack(...args, '-f', 'json')).stdout);

/** A TCP connection from `localAddress` to address:port: 'accepted' or the error's code. */
function tcpFrom(localAddress: string, address: string, port: number): Promise<string> {
  return new Promise((done) => {
    const socket = connect({ host: address, port, localAddress, timeout: 5_000 });
    socket.once('connect', () => {
      socket.destroy();
      done('accepted');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('timeout', () => {
      socket.destroy();
      done('timeout');
    });
  });
}

// Waiting polls the API: every CLI call is ~1.5 s of Python's CPU, and the five tests below run
// side by side on two cores. What a wait waited for is then shown once through the CLI.
let admin: Login | undefined;
async function viewOf(path: string): Promise<Record<string, unknown> | undefined> {
  admin ??= await login('admin', 'admin');
  const res = await call('GET', `/v1.0/${admin.projectId}${path}`, admin.token);
  return res.status === 404 ? undefined : res.json;
}
const instanceView = async (id: string) =>
  (await viewOf(`/instances/${id}`))?.instance as Record<string, unknown> | undefined;
const waitFor = <T>(what: string, check: () => Promise<T | undefined>) =>
  waitUntil(what, check, { timeoutMs: 120_000, intervalMs: 500 });

/** Waits until the instance reports HEALTHY, then shows it with the CLI. */
async function healthyInstance(id: string) {
  await waitFor(`instance ${id} healthy`, async () => {
    const view = await instanceView(id);
    return view?.status === 'ACTIVE' && view.operating_status === 'HEALTHY' ? view : undefined;
  });
  const shown = await json('database', 'instance', 'show', id);
  expect(shown).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
  return shown;
}

describe('openstack CLI', () => {
  beforeAll(() => ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']));

  it('lists no instances for a new project', async () => {
    const table = await openstack('database', 'instance', 'list');
    expect(table.stderr).not.toMatch(/error|exception/i);
    const json = await openstack('database', 'instance', 'list', '-f', 'json');
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  it('reports a wrong password as an authentication failure', async () => {
    const failed = openstackAs('wrong', 'database', 'instance', 'list');
    await expect(failed).rejects.toMatchObject({ stderr: expect.stringMatching(/authentication/i) });
  });

  it('shows a project’s quotas by project name (Keystone’s project lookup)', async () => {
    const quotas = (await json('database', 'quota', 'show', 'demo')) as Array<{
      Resource: string;
      Limit: number;
    }>;
    expect(quotas.map((q) => q.Resource)).toEqual(
      expect.arrayContaining(['instances', 'volumes', 'backups']),
    );
    expect(quotas.find((q) => q.Resource === 'instances')?.Limit).toBeGreaterThan(0);
    await expect(openstack('database', 'quota', 'show', 'no-such-project')).rejects.toMatchObject({
      stderr: expect.stringMatching(/no-such-project/),
    });
  });

  it('lists datastores, their versions, flavors and limits', async () => {
    const datastores = JSON.parse((await openstack('datastore', 'list', '-f', 'json')).stdout) as {
      Name: string;
    }[];
    // Admins also see datastores whose versions are all inactive (the catalog tests leave one).
    expect(datastores.map((d) => d.Name)).toEqual(
      expect.arrayContaining(['mariadb', 'mysql', 'postgresql', 'redis']),
    );
    const versions = JSON.parse(
      (await openstack('datastore', 'version', 'list', 'mysql', '-f', 'json')).stdout,
    );
    expect(versions).toEqual([
      expect.objectContaining({ Name: '10.11' }),
      expect.objectContaining({ Name: '10.11.18' }),
    ]);
    const flavors = JSON.parse((await openstack('database', 'flavor', 'list', '-f', 'json')).stdout) as {
      Name: string;
    }[];
    expect(flavors.map((f) => f.Name)).toContain('ds512M');
    // troveclient prints the limits as a property table whatever the format asked for.
    const limits = (await openstack('database', 'limit', 'list')).stdout;
    expect(limits).toMatch(/\|\s*max_instances\s*\|\s*10\s*\|/);
    expect(limits).toMatch(/\|\s*verb\s*\|\s*ABSOLUTE\s*\|/);
    // ...and then the rate limits as a table: Value, Verb, Remaining, Unit (the e2e cloud's values).
    expect(limits).toMatch(/\|\s*Value\s*\|\s*Verb\s*\|\s*Remaining\s*\|\s*Unit\s*\|/);
    for (const verb of ['POST', 'PUT', 'DELETE', 'GET']) {
      expect(limits).toMatch(
        new RegExp(`\\|\\s*1000000\\s*\\|\\s*${verb}\\s*\\|\\s*\\d+\\s*\\|\\s*MINUTE\\s*\\|`),
      );
    }
  });

  // The tests below each build their own instances and wait on them (a CLI call is ~1.5 s of
  // Python, a build seconds of engine): run side by side, the file takes the longest of them
  // rather than their sum (145 s in sequence). The tests above need an empty project, so they run first.
  it.concurrent('creates, shows, restarts and deletes an instance', async () => {
    const name = `cli-${Date.now()}`;
    const created = JSON.parse(
      (
        await openstack(
          'database',
          'instance',
          'create',
          name,
          '--flavor',
          '7',
          '--size',
          '1',
          '--datastore',
          'redis',
          '--datastore-version',
          '7.0',
          '-f',
          'json',
        )
      ).stdout,
    ) as { id: string; status: string };
    expect(created.status).toBe('BUILD');
    await healthyInstance(created.id);
    const shown = await json('database', 'instance', 'show', name);
    expect(shown.id).toBe(created.id);
    const listed = JSON.parse((await openstack('database', 'instance', 'list', '-f', 'json')).stdout) as {
      ID: string;
    }[];
    expect(listed.map((i) => i.ID)).toContain(created.id);
    // Its own address on the engine's standard port; `--allowed-cidr` applies to it at once (the
    // client binds another loopback address to come from outside or inside the list).
    const address = /127\.77\.\d+\.\d+/.exec(JSON.stringify(shown))?.[0] ?? '';
    expect(address).not.toBe('');
    expect(await tcpFrom('127.9.9.9', address, 6379)).toBe('accepted');
    await openstack('database', 'instance', 'update', created.id, '--allowed-cidr', '127.10.0.0/16');
    expect(await tcpFrom('127.9.9.9', address, 6379)).toBe('ECONNREFUSED');
    expect(await tcpFrom('127.10.3.4', address, 6379)).toBe('accepted');
    const updated = await json('database', 'instance', 'show', created.id);
    expect(JSON.stringify(updated)).toContain('127.10.0.0/16');
    await openstack('database', 'instance', 'restart', created.id);
    await healthyInstance(created.id);
    await openstack('database', 'instance', 'delete', created.id);
    await waitFor('the instance to be gone', async () =>
      (await instanceView(created.id)) ? undefined : true,
    );
    const list = (await json('database', 'instance', 'list')) as { ID: string }[];
    expect(list.map((i) => i.ID)).not.toContain(created.id);
  }, 300_000); // each CLI call starts Python (~1.5 s), and every step waits on a real engine

  it.concurrent('manages databases, users, access and root on a mysql instance', async () => {
    const name = `cli-users-${Date.now()}`;
    const created = JSON.parse(
      (
        await openstack(
          'database',
          'instance',
          'create',
          name,
          '--flavor',
          '7',
          '--size',
          '1',
          '--datastore',
          'mysql',
          '--datastore-version',
          '10.11',
          '-f',
          'json',
        )
      ).stdout,
    ) as { id: string };
    const id = created.id;
    await healthyInstance(id);

    await openstack('database', 'db', 'create', id, 'clidb');
    expect((await json('database', 'db', 'list', id)).map((d: { Name: string }) => d.Name)).toContain(
      'clidb',
    );
    await openstack('database', 'user', 'create', id, 'carol', 'Carol-pass1', '--databases', 'clidb');
    expect((await json('database', 'user', 'list', id)).map((u: { Name: string }) => u.Name)).toContain(
      'carol',
    );
    expect(await json('database', 'user', 'show', id, 'carol')).toMatchObject({ name: 'carol', host: '%' });
    expect(
      (await json('database', 'user', 'show', 'access', id, 'carol')).map((d: { Name: string }) => d.Name),
    ).toEqual(['clidb']);
    await openstack('database', 'user', 'revoke', 'access', id, 'carol', 'clidb');
    expect(await json('database', 'user', 'show', 'access', id, 'carol')).toEqual([]);
    await openstack('database', 'user', 'grant', 'access', id, 'carol', 'clidb');
    expect((await json('database', 'user', 'show', 'access', id, 'carol')).length).toBe(1);

    const root = await json('database', 'root', 'enable', id);
    expect(root).toMatchObject({ name: 'root', password: expect.any(String) });
    expect(await json('database', 'root', 'show', id)).toMatchObject({ is_root_enabled: true });

    await openstack('database', 'user', 'delete', id, 'carol');
    await openstack('database', 'db', 'delete', id, 'clidb');
    expect((await json('database', 'db', 'list', id)).map((d: { Name: string }) => d.Name)).not.toContain(
      'clidb',
    );
    await openstack('database', 'instance', 'delete', id);
  }, 300_000);

  it.concurrent('creates a replica, shows roles, promotes it, refuses an eject of a live source and detaches', async () => {
    const create = async (...args: string[]) =>
      (
        JSON.parse((await openstack('database', 'instance', 'create', ...args, '-f', 'json')).stdout) as {
          id: string;
        }
      ).id;
    const source = await create(
      `cli-src-${Date.now()}`,
      '--flavor',
      '7',
      '--size',
      '1',
      '--datastore',
      'mysql',
    );
    await healthyInstance(source);
    const replica = await create(`cli-rep-${Date.now()}`, '--replica-of', source);
    await healthyInstance(replica);
    const roles = async () =>
      Object.fromEntries(
        ((await json('database', 'instance', 'list')) as { ID: string; Role: string }[]).map((i) => [
          i.ID,
          i.Role,
        ]),
      );
    expect(await roles()).toMatchObject({ [source]: 'primary', [replica]: 'replica' });

    await openstack('database', 'instance', 'promote', replica);
    const follows = async (id: string) =>
      ((await instanceView(id))?.replica_of as { id: string } | undefined)?.id ?? '';
    await waitFor('the promotion', async () =>
      (await follows(source)) === replica && (await follows(replica)) === '' ? true : undefined,
    );
    expect(await roles()).toMatchObject({ [source]: 'replica', [replica]: 'primary' });
    await healthyInstance(source);
    await healthyInstance(replica);

    // The source answers its heartbeats: Trove refuses to eject it.
    await expect(openstack('database', 'instance', 'eject', replica)).rejects.toMatchObject({
      stderr: expect.stringMatching(/cannot be ejected as it has a current heartbeat/),
    });

    await openstack('database', 'instance', 'detach', source);
    await waitFor('the detach', async () => ((await follows(source)) === '' ? true : undefined));
    expect(await roles()).toMatchObject({ [source]: '', [replica]: '' });
    await healthyInstance(source);
    await openstack('database', 'instance', 'delete', source);
    await openstack('database', 'instance', 'delete', replica);
  }, 300_000);

  it.concurrent('manages configuration groups and lists parameters', async () => {
    const params = await json(
      'database',
      'configuration',
      'parameter',
      'list',
      '10.11',
      '--datastore',
      'mysql',
    );
    expect(params.length).toBeGreaterThanOrEqual(25);
    expect(
      await json(
        'database',
        'configuration',
        'parameter',
        'show',
        '10.11',
        'max_connections',
        '--datastore',
        'mysql',
      ),
    ).toMatchObject({
      name: 'max_connections',
    });

    const name = `cli-conf-${Date.now()}`;
    const group = await json(
      'database',
      'configuration',
      'create',
      name,
      '{"max_connections": 150}',
      '--datastore',
      'mysql',
      '--datastore-version',
      '10.11',
    );
    expect((await json('database', 'configuration', 'list')).map((g: { Name: string }) => g.Name)).toContain(
      name,
    );
    await openstack('database', 'configuration', 'set', group.id, '{"max_connections": 160}');
    expect(await json('database', 'configuration', 'show', group.id)).toMatchObject({
      values: expect.stringContaining('160'),
    });

    const instance = await json(
      'database',
      'instance',
      'create',
      `cli-conf-inst-${Date.now()}`,
      '--flavor',
      '7',
      '--size',
      '1',
      '--datastore',
      'mysql',
      '--datastore-version',
      '10.11',
    );
    await healthyInstance(instance.id);
    await openstack('database', 'configuration', 'attach', instance.id, group.id);
    expect(await json('database', 'instance', 'show', instance.id)).toMatchObject({
      configuration: group.id,
    });
    await openstack('database', 'configuration', 'detach', instance.id);
    await openstack('database', 'configuration', 'delete', group.id);
    expect(
      (await json('database', 'configuration', 'list')).map((g: { Name: string }) => g.Name),
    ).not.toContain(name);
    await openstack('database', 'instance', 'delete', instance.id);
  }, 300_000);

  it.concurrent('creates, lists, shows and deletes backups, and restores one into a new instance', async () => {
    const completed = async (id: string) => {
      await waitFor(`backup ${id} completed`, async () => {
        const b = (await viewOf(`/backups/${id}`))?.backup as { status: string } | undefined;
        return b?.status === 'COMPLETED' ? b : undefined;
      });
      const shown = await json('database', 'backup', 'show', id);
      expect(shown.status).toBe('COMPLETED');
      return shown;
    };
    const source = await json(
      'database',
      'instance',
      'create',
      `cli-bk-${Date.now()}`,
      '--flavor',
      '7',
      '--size',
      '1',
      '--datastore',
      'mysql',
      '--datastore-version',
      '10.11',
    );
    await healthyInstance(source.id);
    const full = await json('database', 'backup', 'create', 'cli-full', '--instance', source.id);
    await completed(full.id);
    const incremental = await json(
      'database',
      'backup',
      'create',
      'cli-inc',
      '--instance',
      source.id,
      '--incremental',
    );
    expect((await completed(incremental.id)).parent_id).toBe(full.id);
    const explicit = await json(
      'database',
      'backup',
      'create',
      'cli-parent',
      '--instance',
      source.id,
      '--parent',
      full.id,
    );
    expect((await completed(explicit.id)).parent_id).toBe(full.id);
    const names = (await json('database', 'backup', 'list')).map((b: { Name: string }) => b.Name);
    expect(names).toEqual(expect.arrayContaining(['cli-full', 'cli-inc', 'cli-parent']));

    const restored = await json(
      'database',
      'instance',
      'create',
      `cli-restored-${Date.now()}`,
      '--flavor',
      '7',
      '--size',
      '1',
      '--datastore',
      'mysql',
      '--datastore-version',
      '10.11',
      '--backup',
      incremental.id,
    );
    await healthyInstance(restored.id);
    await openstack('database', 'backup', 'delete', full.id);
    const left = (await json('database', 'backup', 'list')).map((b: { ID: string }) => b.ID);
    expect(left).not.toContain(full.id);
    expect(left).not.toContain(incremental.id); // an incremental goes with its parent
    await openstack('database', 'instance', 'delete', restored.id);
    await openstack('database', 'instance', 'delete', source.id);
  }, 300_000);
});
