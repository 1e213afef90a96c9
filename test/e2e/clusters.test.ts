import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownSlots } from '../../agent/engines/redis-cluster.ts';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil, withTimeout } from '../../local/wait.ts';
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
  // delete, grow and shrink print nothing (and take no -f).
  const printing = !['delete', 'grow', 'shrink'].some((verb) => args.includes(verb));
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

/** Waits for the cluster's task to return to NONE with `count` members, none of them in error. */
async function untilTaskNone(id: string, count: number): Promise<ClusterView> {
  let last: unknown;
  return waitUntil(
    `cluster ${id} with ${count} members and no task`,
    async () => {
      const view = (await api('GET', `/clusters/${id}`)).json?.cluster as ClusterView;
      last = view;
      const failed = view.instances.find((i) => i.status === 'ERROR');
      if (failed)
        throw new Error(
          `member ${failed.id} failed: ${JSON.stringify((await api('GET', `/instances/${failed.id}`)).json)}`,
        );
      return view.task.name === 'NONE' && view.instances.length === count ? view : undefined;
    },
    { timeoutMs: 200_000, intervalMs: 1000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}`);
  });
}

// A cluster client queues a command while it has no usable connection, with no deadline of its
// own (its commandTimeout starts once a node has it): each read and step below has one
// (withTimeout), so a read stuck there fails, and a step stuck there fails by name, not as the
// test's timeout.

/** Reads every key again and again while the cluster changes; each read must give its value. */
class KeyReader {
  readonly failures: string[] = [];
  private reads = 0;
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly client: InstanceType<typeof Redis.Cluster>,
    private readonly count: number,
  ) {}

  async write(): Promise<void> {
    for (let i = 0; i < this.count; i += 500)
      await Promise.all(
        Array.from({ length: Math.min(500, this.count - i) }, (_, j) =>
          this.client.set(`k:${i + j}`, `v:${i + j}`),
        ),
      );
  }

  start(): void {
    this.running = (async () => {
      while (!this.stopping) {
        for (let i = 0; i < this.count && !this.stopping; i += 250) {
          const batch = Array.from({ length: Math.min(250, this.count - i) }, (_, j) => i + j);
          await Promise.all(
            batch.map(async (n) => {
              try {
                const value = await withTimeout(`read of k:${n}`, this.client.get(`k:${n}`), 15_000);
                if (value !== `v:${n}` && this.failures.length < 10)
                  this.failures.push(`k:${n} read ${value}`);
              } catch (err) {
                if (this.failures.length < 10) this.failures.push(`k:${n}: ${(err as Error).message}`);
              }
              this.reads++;
            }),
          );
        }
      }
    })();
  }

  async stop(): Promise<number> {
    this.stopping = true;
    // Every read has a deadline, so the loop ends within one of them.
    await this.running;
    return this.reads;
  }
}

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
  let createdId: string | undefined;
  let createdIps: string[] = [];
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
    createdId = typeof created.id === 'string' ? created.id : undefined;
    expect(created).toMatchObject({ task_name: 'BUILDING', instance_count: 3, datastore: 'redis' });
    // The CLI's `hasattr(cluster, 'ip')` lazy-loads the cluster (a GET), so its create output
    // shows the addresses the members already have at that moment: none, or some of them.
    createdIps = typeof created.ip === 'string' ? created.ip.split(', ') : [];
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

  let access: { password: string; ca: string; seeds: { host: string; port: number }[] } | undefined;

  afterAll(async () => {
    // Also when the build failed or timed out: its members would hold the project's quota for
    // later files. A cluster still in a task refuses a delete (422): reset it first (admin).
    if (!createdId) return;
    const path = `/clusters/${createdId}`;
    if ((await api('DELETE', path)).status === 422) {
      await api('POST', path, { 'reset-status': {} });
      await api('DELETE', path);
    }
    await waitUntil(
      `cluster ${createdId} gone`,
      async () => ((await api('GET', path)).status === 404 ? true : undefined),
      {
        timeoutMs: 150_000,
        intervalMs: 1000,
      },
    );
  }, 180_000);

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
    // What the create showed, if anything, was among the members' addresses.
    for (const ip of createdIps) expect(String(shown.ip).split(', ')).toContain(ip);
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
    const unknown = await api('POST', `/clusters/${cluster.id}`, { add_shard: {} });
    expect(unknown.json).toEqual({ badRequest: { code: 400, message: 'Action add_shard not supported' } });
    expect((await api('POST', `/clusters/${cluster.id}`, {})).status).toBe(400);
  });

  it("refuses a bad grow or shrink with Trove's errors, writing nothing", async () => {
    const refusals: [object, number, string][] = [
      [{ grow: [{ flavorRef: '7' }] }, 400, 'A volume size is required for each instance in the cluster.'],
      [
        { grow: [{ flavorRef: 'no-such-flavor', volume: { size: 1 } }] },
        400,
        'Resource no-such-flavor cannot be found.',
      ],
      [{ grow: [{ flavorRef: '7', volume: { size: 100_000 } }] }, 413, "Volume 'size' cannot exceed maximum"],
      [{ grow: [] }, 400, 'Validation error'],
      [{ shrink: [{ id: 'not-a-member' }] }, 404, "Instance 'not-a-member' cannot be found."],
      [
        { shrink: [{ id: ids[0] }] },
        400,
        'The number of instances in your cluster cannot safely be lowered below the current level',
      ],
    ];
    for (const [request, status, message] of refusals) {
      const res = await api('POST', `/clusters/${cluster.id}`, request);
      expect(res.status, res.text).toBe(status);
      expect(JSON.stringify(res.json)).toContain(message);
    }
    const after = (await api('GET', `/clusters/${cluster.id}`)).json?.cluster as ClusterView;
    expect(after.task.name).toBe('NONE');
    expect(after.instances.map((i) => i.id)).toEqual(ids);
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
    access = {
      password: root.password,
      ca,
      seeds: (cluster.ip ?? []).map(({ address }) => ({ host: address, port: 6379 })),
    };
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

  // Every wait below has a deadline of its own, shorter than the test's, so a step that does not
  // finish fails by name. A run takes ~40 s (25 s grow, 17 s shrink); CI's machine is slower.
  it('grows to four masters and shrinks back to three while every read of 10,000 keys succeeds', {
    timeout: 600_000,
  }, async () => {
    if (!access) throw new Error('the cluster root step did not run');
    // Every member as a seed, as a client of a real cluster is configured: the first one leaves.
    const client = new Redis.Cluster(access.seeds, {
      // Its default (1 s) for CLUSTER SLOTS over TLS is short on a loaded two-core machine.
      slotsRefreshTimeout: 5_000,
      redisOptions: {
        password: access.password,
        tls: { ca: access.ca, rejectUnauthorized: true },
        connectTimeout: 5_000,
        // A read that hangs is a failed read, not a stuck test.
        commandTimeout: 10_000,
      },
    });
    const reader = new KeyReader(client, 10_000);
    try {
      await withTimeout('writing 10,000 keys', reader.write(), 60_000);
      reader.start();
      // Each master's count of the slots it serves, from its own CLUSTER NODES.
      const shares = async () => {
        const masters = client.nodes('master');
        const nodes = await Promise.all(masters.map((node) => node.call('CLUSTER', 'NODES')));
        return nodes.map((text) => ownSlots(String(text)).size).sort((a, b) => a - b);
      };

      // Grow by one member through the real CLI; slots (and keys) spread over four masters.
      let started = performance.now();
      await cli('database', 'cluster', 'grow', cluster.id, '--instance', 'flavor=7,volume=1');
      const grown = await untilTaskNone(cluster.id, 4);
      const growSeconds = (performance.now() - started) / 1000;
      const added = grown.instances.map((i) => i.id).filter((id) => !ids.includes(id));
      expect(added).toHaveLength(1);
      ids.push(...added);
      servers.push(await serverIdOf(added[0] as string));
      await waitUntil(
        'four masters seen',
        async () => (client.nodes('master').length === 4 ? true : undefined),
        {
          timeoutMs: 30_000,
          intervalMs: 500,
        },
      );
      expect(await shares()).toEqual([4096, 4096, 4096, 4096]);

      // Shrink by an original member: its slots and keys move to the three others first.
      const [leaving] = ids;
      const leavingServer = servers[0];
      started = performance.now();
      await cli('database', 'cluster', 'shrink', cluster.id, leaving as string);
      const shrunk = await untilTaskNone(cluster.id, 3);
      const shrinkSeconds = (performance.now() - started) / 1000;
      expect(shrunk.instances.map((i) => i.id)).not.toContain(leaving);
      ids.shift();
      servers.shift();
      await waitUntil(
        'three masters seen',
        async () => (client.nodes('master').length === 3 ? true : undefined),
        {
          timeoutMs: 30_000,
          intervalMs: 500,
        },
      );
      expect(await shares()).toEqual([5461, 5461, 5462]);
      await waitUntil(
        `member ${leaving} deleted`,
        async () => ((await api('GET', `/instances/${leaving}`)).status === 404 ? true : undefined),
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
      await expectNothingLeft(leaving as string, admin.projectId, leavingServer);

      const reads = await reader.stop();
      expect(reader.failures).toEqual([]);
      expect(reads).toBeGreaterThan(10_000);
      // The figure: one member in and out again, with the 10,000 keys and a reader throughout.
      console.log(
        `cluster grow 3→4: ${growSeconds.toFixed(1)} s; shrink 4→3: ${shrinkSeconds.toFixed(1)} s; ${reads} reads, all right`,
      );
    } finally {
      await withTimeout('stopping the reader', reader.stop(), 30_000);
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
