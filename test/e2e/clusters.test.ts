import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login, openstackAuth } from './helpers.ts';
import { instanceSsl } from './instance-access.ts';
import type { InstanceView } from './instance-helpers.ts';
import { dynamo, expectNothingLeft, serverIdOf } from './leftovers.ts';

// Trove's cluster API on Redis Cluster, end to end on real engines: three masters built through
// the instance create path, met and given the 16384 slots; a cluster-aware client writes keys
// that land on every master and reads them back; the member rules (hidden from instance lists,
// cluster_id, no delete of their own) and the action rules hold; the delete leaves nothing. The
// cluster is created, listed, shown and deleted through the real openstack CLI.

type ClusterView = {
  id: string;
  task: { id: number; name: string; description: string };
  instances: { id: string; type: string; status?: string; ip?: { address: string; type: string }[] }[];
  ip?: { address: string }[];
};

const run = promisify(execFile);

/** The real CLI as admin; its JSON output (`-f json`) when it prints any. */
async function cli<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const printing = !args.includes('delete');
  const { stdout } = await run(
    'openstack',
    [...openstackAuth('admin'), ...args, ...(printing ? ['-f', 'json'] : [])],
    {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: 60_000,
    },
  );
  return (printing ? JSON.parse(stdout) : {}) as T;
}
let admin: Login;
const api = (method: string, path: string, body?: object | string) =>
  call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
const body = (instances: object[], datastore = { type: 'redis', version: '7.0' }) => ({
  cluster: { name: `rc-${Date.now()}`, datastore, instances },
});
const member = { flavorRef: '7', volume: { size: 1 } };

beforeAll(async () => {
  admin = await login('admin', 'admin');
});

describe('cluster requests refused before anything is written', () => {
  it.each([
    [
      'too few members',
      body([member, member]),
      400,
      'The number of instances for your initial cluster must be at least 3.',
    ],
    [
      'a member without a volume',
      body([member, member, { flavorRef: '7' }]),
      400,
      'A volume size is required for each instance in the cluster.',
    ],
    [
      'a datastore that does not cluster',
      body([member, member, member], { type: 'postgresql', version: '15' }),
      501,
      'Clusters not supported for postgresql-15.',
    ],
    ['a bad locality', { cluster: { ...body([member]).cluster, locality: 'near' } }, 400, 'Validation error'],
  ])('%s', async (_what, request, status, message) => {
    const count = async () =>
      ((await api('GET', '/clusters')).json?.clusters as unknown[] | undefined)?.length;
    const before = await count();
    const res = await api('POST', '/clusters', request);
    expect(res.status, res.text).toBe(status);
    expect(JSON.stringify(res.json)).toContain(message);
    expect(await count()).toBe(before);
  });

  it("answers Trove's 404 for a cluster that does not exist", async () => {
    const res = await api('GET', '/clusters/no-such-cluster');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({
      itemNotFound: { code: 404, message: "Cluster 'no-such-cluster' cannot be found." },
    });
  });
});

describe('a Redis Cluster of three masters', () => {
  let cluster: ClusterView;
  let ids: string[] = [];
  const servers: (string | undefined)[] = [];

  // Created, listed, shown and deleted through the real CLI, as the README has users run it.
  beforeAll(async () => {
    await ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']);
    const members = Array.from({ length: 3 }, () => ['--instance', 'flavor=7,volume=1']).flat();
    const created = await cli(
      'database',
      'cluster',
      'create',
      `rc-${Date.now()}`,
      'redis',
      '7.0',
      ...members,
    );
    expect(created).toMatchObject({ task_name: 'BUILDING', instance_count: 3, datastore: 'redis' });
    expect(created).not.toHaveProperty('ip');
    let last: unknown;
    cluster = await waitUntil(
      `cluster ${created.id} built`,
      async () => {
        const view = (await api('GET', `/clusters/${created.id}`)).json?.cluster as ClusterView;
        last = view;
        const failed = view.instances.find((i) => i.status === 'ERROR');
        if (failed)
          throw new Error(
            `member ${failed.id} failed: ${JSON.stringify((await api('GET', `/instances/${failed.id}`)).json)}`,
          );
        return view.task.name === 'NONE' ? view : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 1000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}`);
    });
    ids = cluster.instances.map((i) => i.id);
    for (const id of ids) servers.push(await serverIdOf(id));
  }, 300_000);

  afterAll(async () => {
    if (!cluster) return;
    await api('DELETE', `/clusters/${cluster.id}`);
  });

  it('is listed and shown by the CLI with its members and addresses', async () => {
    const listed = await cli<Record<string, string>[]>('database', 'cluster', 'list');
    expect(listed).toContainEqual({
      ID: cluster.id,
      Name: expect.any(String),
      Datastore: 'redis',
      'Datastore Version': '7.0',
      'Task Name': 'NONE',
    });
    const shown = await cli('database', 'cluster', 'show', cluster.id);
    expect(shown).toMatchObject({ id: cluster.id, task_name: 'NONE', instance_count: 3 });
    expect(String(shown.ip).split(', ')).toHaveLength(3);
    const members = (await cli('database', 'cluster', 'list', 'instances', cluster.id)) as Record<
      string,
      unknown
    >[];
    expect(members.map((m) => [m.ID, m['Flavor ID'], m.Size, m.Status])).toEqual(
      ids.map((id) => [id, '7', 1, 'ACTIVE']),
    );
  });

  it('shows its members ACTIVE with their addresses, and the cluster address', () => {
    expect(cluster.instances.map((i) => i.status)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
    const addresses = cluster.instances.flatMap((i) => i.ip ?? []).map((ip) => ip.address);
    expect(addresses).toHaveLength(3);
    expect(cluster.ip?.map((ip) => ip.address)).toEqual(addresses);
  });

  it('keeps its members out of instance lists unless asked, each showing its cluster', async () => {
    const listed = (await api('GET', '/instances')).json?.instances as { id: string }[];
    expect(listed.map((i) => i.id)).not.toEqual(expect.arrayContaining([ids[0]]));
    const all = (await api('GET', '/instances?include_clustered=true')).json?.instances as { id: string }[];
    expect(all.map((i) => i.id)).toEqual(expect.arrayContaining(ids));
    const shown = await api('GET', `/clusters/${cluster.id}/instances/${ids[1]}`);
    expect(shown.status).toBe(200);
    expect(shown.json?.instance).toMatchObject({ id: ids[1], cluster_id: cluster.id, status: 'ACTIVE' });
    expect((await api('GET', `/clusters/${cluster.id}/instances/not-a-member`)).status).toBe(404);
  });

  it('refuses to delete a member alone, and takes one action per request', async () => {
    const res = await api('DELETE', `/instances/${ids[0]}`);
    expect(res.status).toBe(501);
    expect(res.json).toEqual({
      notImplemented: {
        code: 501,
        message: 'Operation not supported for instances that are part of a cluster.',
      },
    });
    const resize = await api('POST', `/instances/${ids[0]}/action`, { resize: { volume: { size: 2 } } });
    expect(resize.status).toBe(501);
    const two = await api('POST', `/clusters/${cluster.id}`, { 'reset-status': {}, grow: [] });
    expect(two.status).toBe(400);
    expect(JSON.stringify(two.json)).toContain('exactly one action');
    const grow = await api('POST', `/clusters/${cluster.id}`, { grow: [member] });
    expect(grow.json).toEqual({ badRequest: { code: 400, message: 'Action grow not supported' } });
    expect((await api('POST', `/clusters/${cluster.id}`, {})).status).toBe(400);
  });

  it('takes keys through a cluster-aware client on every master, and reads them back', async () => {
    // Trove's cluster root: one password on every member (Redis Cluster's clients use one).
    expect((await api('GET', `/clusters/${cluster.id}/root`)).json).toEqual({ rootEnabled: false });
    const root = await cli<{ name: string; password: string }>('database', 'root', 'enable', cluster.id);
    expect(root.name).toBe('root');
    expect((await api('GET', `/clusters/${cluster.id}/root`)).json).toEqual({ rootEnabled: true });
    const first = (await api('GET', `/instances/${ids[0]}`)).json?.instance as InstanceView;
    const { ca_certificate: ca } = await instanceSsl(admin, first);
    const [seed] = cluster.ip ?? [];
    const client = new Redis.Cluster([{ host: seed?.address, port: 6379 }], {
      redisOptions: { password: root.password, tls: { ca, rejectUnauthorized: true }, connectTimeout: 5_000 },
      clusterRetryStrategy: () => null,
    });
    try {
      const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`);
      for (const key of keys) await client.set(key, `value-of-${key}`);
      const read = await Promise.all(keys.map((key) => client.get(key)));
      expect(read).toEqual(keys.map((key) => `value-of-${key}`));
      const masters = client.nodes('master');
      expect(masters).toHaveLength(3);
      const sizes = await Promise.all(masters.map((node) => node.dbsize()));
      expect(sizes.every((n) => n > 50)).toBe(true);
      expect(sizes.reduce((s, n) => s + n, 0)).toBe(keys.length);
      for (const node of masters)
        expect(String(await node.call('CLUSTER', 'INFO'))).toContain('cluster_state:ok');
    } finally {
      client.disconnect();
    }
  });

  it('is deleted with its members by the CLI, leaving nothing behind', async () => {
    await cli('database', 'cluster', 'delete', cluster.id);
    const deleting = (await api('GET', `/clusters/${cluster.id}`)).json?.cluster as ClusterView | undefined;
    expect(deleting?.task.name).toBe('DELETING');
    await waitUntil(
      `cluster ${cluster.id} gone`,
      async () => ((await api('GET', `/clusters/${cluster.id}`)).status === 404 ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    for (const [i, id] of ids.entries()) await expectNothingLeft(id, admin.projectId, servers[i]);
    const item = await dynamo().send(
      new GetCommand({
        TableName: 'troveless-local-clusters',
        Key: { project_id: admin.projectId, id: cluster.id },
      }),
    );
    expect(item.Item).toBeUndefined();
  }, 150_000);
});
