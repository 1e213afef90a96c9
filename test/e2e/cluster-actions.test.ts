import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Redis, { type Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login, openstackAuth } from './helpers.ts';
import { instanceSsl } from './instance-access.ts';
import type { InstanceView } from './instance-helpers.ts';
import { expectNothingLeft, serverIdOf } from './leftovers.ts';

// Trove's rolling cluster actions and the admin's cluster routes, on one real Redis Cluster
// driven through the real openstack CLI wherever the CLI has the command (troveclient has no
// cluster restart or configuration commands: those go through the API it would call). Each
// rolling action must touch one member at a time, keep every key readable, and end with the
// task NONE; `force delete` recovers a cluster caught mid-action and leaves nothing behind.
// One cluster serves every case (~55 s in CI); the rolling upgrade onto a second version is opt-in.

type Member = { id: string; status?: string };
type ClusterView = {
  id: string;
  task: { name: string };
  datastore: { type: string; version: string };
  instances: Member[];
  ip?: { address: string }[];
  configuration?: string;
};

const run = promisify(execFile);
const env = { PATH: process.env.PATH, HOME: process.env.HOME };

/** The real CLI as admin: its JSON output, or nothing for commands that print none. */
async function cli<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const quiet = ['delete', 'reset', 'upgrade'].some((verb) => args.includes(verb));
  const { stdout } = await run(
    'openstack',
    [...openstackAuth('admin'), ...args, ...(quiet ? [] : ['-f', 'json'])],
    {
      env,
      timeout: 60_000,
    },
  );
  return (quiet ? {} : JSON.parse(stdout)) as T;
}

let admin: Login;
let demo: Login;
const api = (method: string, path: string, body?: object) =>
  call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
const show = async (id: string) =>
  (await api('GET', `/clusters/${id}`)).json?.cluster as ClusterView | undefined;

beforeAll(async () => {
  [admin, demo] = await Promise.all([login('admin', 'admin'), login('demo', 'demo')]);
});

describe('the admin cluster routes', () => {
  it("answer a non-admin with Trove's admin_context refusal", async () => {
    for (const [method, path, body] of [
      ['GET', '/mgmt/clusters', undefined],
      ['GET', '/mgmt/clusters/any', undefined],
      ['POST', '/mgmt/clusters/any/action', { 'reset-task': {} }],
    ] as const) {
      const res = await call(method, `/v1.0/${demo.projectId}${path}`, demo.token, body);
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.json).toEqual({
        unauthorized: { code: 401, message: 'User does not have admin privileges.' },
      });
    }
  });

  it("answer Trove's 404 and 400 for a cluster that does not exist or an action that does not", async () => {
    expect((await api('GET', '/mgmt/clusters/no-such-cluster')).json).toEqual({
      itemNotFound: { code: 404, message: "Cluster 'no-such-cluster' cannot be found." },
    });
    expect((await api('POST', '/mgmt/clusters/no-such-cluster/action', {})).status).toBe(400);
    const listed = await api('GET', '/mgmt/clusters');
    expect(listed.status).toBe(200);
    expect(Array.isArray(listed.json?.clusters)).toBe(true);
  });
});

// The rolling upgrade onto a second catalog version (~30 s: each member is backed up first, as an
// instance upgrade is) runs when TROVELESS_CLUSTER_ACTIONS=1; CI runs the rest on one cluster.
const wanted = process.env.TROVELESS_CLUSTER_ACTIONS === '1';
describe('rolling actions on a Redis Cluster, through the CLI', () => {
  let cluster: ClusterView;
  let ids: string[] = [];
  const servers: (string | undefined)[] = [];
  let password = '';
  let ca = '';
  let versionId: string | undefined;
  let groupId: string | undefined;
  const keys = Array.from({ length: 200 }, (_, i) => `rolling-${i}`);

  /** A cluster-aware client on the cluster's addresses (root's password, the members' CA). */
  async function withClient<T>(work: (client: Cluster) => Promise<T>): Promise<T> {
    const seeds = (cluster.ip ?? []).map((ip) => ({ host: ip.address, port: 6379 }));
    const client = new Redis.Cluster(seeds, {
      redisOptions: { password, tls: { ca, rejectUnauthorized: true }, connectTimeout: 5_000 },
      clusterRetryStrategy: () => null,
    });
    try {
      // Its nodes are known once it has read the cluster's slots.
      await new Promise((ready, failed) => {
        client.once('ready', ready);
        client.once('error', failed);
      });
      return await work(client);
    } finally {
      client.disconnect();
    }
  }
  const runIds = () =>
    withClient(async (client) => {
      const masters = client.nodes('master');
      const infos = await Promise.all(masters.map((node) => node.info('server')));
      return infos.map((info) => /run_id:(\w+)/.exec(info)?.[1]).sort();
    });
  const readAll = () => withClient((client) => Promise.all(keys.map((key) => client.get(key))));

  /**
   * Waits for the cluster's task to come back to NONE, watching its members meanwhile: the
   * most that were ever away (not ACTIVE) at once, and which were seen away.
   */
  async function watchRolling(id: string, task: string) {
    let mostAway = 0;
    const seenAway = new Set<string>();
    let last: ClusterView | undefined;
    const done = await waitUntil(
      `cluster ${id} ${task} done`,
      async () => {
        const view = await show(id);
        last = view;
        const away = (view?.instances ?? []).filter((m) => m.status !== 'ACTIVE');
        for (const m of away) seenAway.add(m.id);
        mostAway = Math.max(mostAway, away.length);
        return view?.task.name === 'NONE' ? view : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}`);
    });
    return { done, mostAway, seenAway };
  }

  beforeAll(async () => {
    await ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']);
    const members = Array.from({ length: 3 }, () => ['--instance', 'flavor=7,volume=1']).flat();
    const created = await cli(
      'database',
      'cluster',
      'create',
      `ra-${Date.now()}`,
      'redis',
      '7.0',
      ...members,
    );
    expect(created).toMatchObject({ task_name: 'BUILDING', instance_count: 3 });
    cluster = (await watchRolling(String(created.id), 'BUILDING')).done;
    ids = cluster.instances.map((m) => m.id);
    for (const id of ids) servers.push(await serverIdOf(id));
    password = (await cli<{ password: string }>('database', 'root', 'enable', cluster.id)).password;
    const first = (await api('GET', `/instances/${ids[0]}`)).json?.instance as InstanceView;
    ca = (await instanceSsl(admin, first)).ca_certificate;
    await withClient(async (client) => {
      for (const key of keys) await client.set(key, `value-of-${key}`);
    });
  }, 300_000);

  afterAll(async () => {
    if (cluster && (await show(cluster.id))) await api('DELETE', `/clusters/${cluster.id}`);
    if (groupId) await api('DELETE', `/configurations/${groupId}`);
  });

  it('is shown by the CLI with its members, and lists no modules on them', async () => {
    const shown = await cli('database', 'cluster', 'show', cluster.id);
    expect(shown).toMatchObject({ id: cluster.id, task_name: 'NONE', instance_count: 3 });
    const listed = await cli<Record<string, unknown>[]>(
      'database',
      'cluster',
      'list',
      'instances',
      cluster.id,
    );
    expect(listed.map((m) => m.ID)).toEqual(ids);
    expect(await cli('database', 'cluster', 'modules', cluster.id)).toEqual([]);
  });

  it('is listed and shown by the admin routes with its project', async () => {
    const listed = (await api('GET', '/mgmt/clusters')).json?.clusters as Record<string, unknown>[];
    expect(listed.find((c) => c.id === cluster.id)).toMatchObject({
      tenant_id: admin.projectId,
      deleted: false,
      task: { name: 'NONE' },
    });
    const shown = (await api('GET', `/mgmt/clusters/${cluster.id}`)).json?.cluster as Record<string, unknown>;
    expect(shown).toMatchObject({ id: cluster.id, tenant_id: admin.projectId, deleted: false });
    expect((shown.instances as Member[]).map((m) => m.status)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
    expect((await api('POST', `/mgmt/clusters/${cluster.id}/action`, { 'reset-task': {} })).status).toBe(202);
    await cli('database', 'cluster', 'reset', 'status', cluster.id);
    expect((await show(cluster.id))?.task.name).toBe('NONE');
    // A reset member's service status is unknown until its guest's next heartbeat (Trove's).
    await waitUntil(
      'members healthy again after the reset',
      async () => {
        const views = await Promise.all(
          ids.map(async (id) => (await api('GET', `/instances/${id}`)).json?.instance),
        );
        return views.every((v) => (v as InstanceView | undefined)?.operating_status === 'HEALTHY')
          ? true
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  }, 150_000);

  it('restarts one member at a time, every engine restarted, every key kept', async () => {
    const before = await runIds();
    const res = await api('POST', `/clusters/${cluster.id}`, { restart: {} });
    expect(res.status, res.text).toBe(202);
    expect((res.json?.cluster as ClusterView | undefined)?.task.name).toBe('RESTARTING_CLUSTER');
    const busy = await api('POST', `/clusters/${cluster.id}`, { restart: {} });
    expect(busy.json).toEqual({
      unprocessableEntity: {
        code: 422,
        message:
          "This action cannot be performed on the cluster while the current cluster task is 'RESTARTING_CLUSTER'.",
      },
    });
    const { done, mostAway } = await watchRolling(cluster.id, 'RESTARTING_CLUSTER');
    expect(mostAway).toBeLessThanOrEqual(1);
    expect(done.instances.map((m) => m.status)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
    for (const id of ids)
      expect((await api('GET', `/instances/${id}`)).json?.instance).not.toHaveProperty('fault');
    const after = await runIds();
    expect(before).toHaveLength(3);
    expect(after.filter((id) => before.includes(id))).toEqual([]);
    expect(await readAll()).toEqual(keys.map((key) => `value-of-${key}`));
  }, 300_000);

  it('attaches a configuration group to every member and detaches it', async () => {
    const wrong = await api('POST', `/clusters/${cluster.id}`, {
      configuration_attach: { configuration_id: 'nope' },
    });
    expect(wrong.status).toBe(404);
    const created = await api('POST', '/configurations', {
      configuration: {
        name: `ra-group-${Date.now()}`,
        values: { 'maxmemory-samples': 7 },
        datastore: { type: 'redis', version: '7.0' },
      },
    });
    expect(created.status, created.text).toBe(200);
    groupId = (created.json?.configuration as { id: string } | undefined)?.id;
    const attach = await api('POST', `/clusters/${cluster.id}`, {
      configuration_attach: { configuration_id: groupId },
    });
    expect(attach.status, attach.text).toBe(202);
    expect((attach.json?.cluster as ClusterView | undefined)?.task.name).toBe('UPDATING_CLUSTER');
    const attached = (await watchRolling(cluster.id, 'UPDATING_CLUSTER')).done;
    expect(attached.configuration).toBe(groupId);
    for (const id of ids)
      expect((await api('GET', `/instances/${id}`)).json?.instance).toMatchObject({
        configuration: { id: groupId },
      });
    const samples = () =>
      withClient(async (client) =>
        Promise.all(client.nodes('master').map(async (n) => (await n.config('GET', 'maxmemory-samples'))[1])),
      );
    expect(await samples()).toEqual(['7', '7', '7']);
    const again = await api('POST', `/clusters/${cluster.id}`, {
      configuration_attach: { configuration_id: groupId },
    });
    expect(again.json).toEqual({
      badRequest: {
        code: 400,
        message: `Cluster ${cluster.id} already has a Configuration Group attached: ${groupId}.`,
      },
    });
    expect((await api('POST', `/clusters/${cluster.id}`, { configuration_detach: {} })).status).toBe(202);
    const detached = (await watchRolling(cluster.id, 'UPDATING_CLUSTER')).done;
    expect(detached.configuration).toBeUndefined();
    for (const id of ids)
      expect((await api('GET', `/instances/${id}`)).json?.instance).not.toHaveProperty('configuration');
    expect(await samples()).toEqual(['5', '5', '5']);
  }, 300_000);

  it('refuses an upgrade to its own version with a clear 400, the cluster left as it was', async () => {
    const refused = cli('database', 'cluster', 'upgrade', cluster.id, '7.0');
    await expect(refused).rejects.toMatchObject({
      stderr: expect.stringMatching(/The cluster already runs datastore version '7\.0'\..*HTTP 400/s),
    });
    expect((await show(cluster.id))?.task.name).toBe('NONE');
  });

  if (wanted)
    it('rolls onto a second version of the same engine build, one member at a time', async () => {
      // A second version of the very same engine build, as an operator would add one.
      const name = `7.0-rolling-${Date.now()}`;
      const added = await api('POST', '/mgmt/datastore-versions', {
        version: {
          name,
          version: '7.0',
          datastore_name: 'redis',
          datastore_manager: 'redis',
          packages: ['redis-server'],
          active: true,
        },
      });
      expect(added.status, added.text).toBe(202);
      const versions = (await api('GET', '/mgmt/datastore-versions')).json?.versions as {
        id: string;
        name: string;
      }[];
      versionId = versions.find((v) => v.name === name)?.id;
      await cli('database', 'cluster', 'upgrade', cluster.id, name);
      expect((await show(cluster.id))?.task.name).toBe('UPGRADING_CLUSTER');
      const { done, mostAway, seenAway } = await watchRolling(cluster.id, 'UPGRADING_CLUSTER');
      expect(mostAway).toBeLessThanOrEqual(1);
      expect([...seenAway].sort()).toEqual([...ids].sort());
      expect(done.datastore.version).toBe(name);
      for (const id of ids)
        expect((await api('GET', `/instances/${id}`)).json?.instance).toMatchObject({
          status: 'ACTIVE',
          datastore: { version: name },
        });
      expect(await readAll()).toEqual(keys.map((key) => `value-of-${key}`));
    }, 400_000);

  it('is force deleted by the CLI in the middle of a rolling restart, leaving nothing behind', async () => {
    expect((await api('POST', `/clusters/${cluster.id}`, { restart: {} })).status).toBe(202);
    await cli('database', 'cluster', 'force', 'delete', cluster.id);
    await waitUntil(
      `cluster ${cluster.id} gone`,
      async () => ((await api('GET', `/clusters/${cluster.id}`)).status === 404 ? true : undefined),
      { timeoutMs: 150_000, intervalMs: 1000 },
    );
    // The upgrade's own backups (one per member, taken before it) are the user's to delete.
    const backups = (await api('GET', '/backups')).json?.backups as { id: string; instance_id: string }[];
    for (const b of backups.filter((b) => ids.includes(b.instance_id)))
      await api('DELETE', `/backups/${b.id}`);
    await waitUntil(
      'the upgrade backups deleted',
      async () => {
        const left = (await api('GET', '/backups')).json?.backups as { instance_id: string }[];
        return left.some((b) => ids.includes(b.instance_id)) ? undefined : true;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    for (const [i, id] of ids.entries()) await expectNothingLeft(id, admin.projectId, servers[i]);
    if (versionId) expect((await api('DELETE', `/mgmt/datastore-versions/${versionId}`)).status).toBe(202);
  }, 300_000);
});
