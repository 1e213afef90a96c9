import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login } from './helpers.ts';
import { instanceSsl } from './instance-access.ts';
import {
  createInstance,
  endpointOf,
  healthy,
  type InstanceView,
  waitForInstance,
} from './instance-helpers.ts';
import {
  agentLogOf,
  baseDirOf,
  deleteAndCheck,
  expectNothingLeft,
  guestProcesses,
  serverIdOf,
  signal,
} from './leftovers.ts';

// Trove's cluster API on MariaDB Galera, end to end on real engines: three members built through
// the instance create path, the first bootstrapping the cluster and the others joining it by
// mariadb-backup SST; a row written on one member is read on the others, the cluster's address
// leads to a Synced member, and the delete leaves nothing. With TROVELESS_GALERA=all: a member's
// engine killed while the other two keep taking writes, then brought back by a restart, rejoining
// (not bootstrapping a cluster of its own) and catching up; a grow to four by SST and a shrink
// back to three while a writer runs, none of its writes failing; and the time to create the
// cluster beside three single instances created in parallel.

const FULL = process.env.TROVELESS_GALERA === 'all';

type ClusterView = {
  id: string;
  task: { name: string };
  instances: { id: string; status?: string }[];
  ip?: { address: string }[];
};

let admin: Login;
const api = (method: string, path: string, body?: object) =>
  call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
const member = { flavorRef: '7', volume: { size: 1 } };
const datastore = { type: 'mysql', version: '10.11' };

interface Member {
  id: string;
  server?: string;
  host: string;
  port: number;
  ca: string;
}

let rootPassword = '';
const connectTo = (m: { host: string; port: number; ca: string }) =>
  mysql.createConnection({
    host: m.host,
    port: m.port,
    user: 'root',
    password: rootPassword,
    ssl: { ca: m.ca, rejectUnauthorized: true },
    connectTimeout: 5_000,
  });

async function query<T = Record<string, unknown>>(
  m: Member,
  sql: string,
  values: unknown[] = [],
): Promise<T[]> {
  const conn = await connectTo(m);
  try {
    const [rows] = await conn.query(sql, values);
    return rows as T[];
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

async function wsrep(m: Member): Promise<Record<string, string>> {
  const rows = await query<{ Variable_name: string; Value: string }>(
    m,
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment')",
  );
  return Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
}

/** The last lines of each member's engine and agent logs: why a cluster did not form. */
async function engineLogs(clusterId: string | undefined): Promise<string> {
  const view = (await api('GET', `/clusters/${clusterId}`)).json?.cluster as ClusterView | undefined;
  const out: string[] = [];
  for (const { id } of view?.instances ?? []) {
    const server = await serverIdOf(id);
    if (!server) continue;
    const files: [string, string][] = [
      ['mariadb.log', join(baseDirOf(server), 'mariadb.log')],
      ['agent.log', agentLogOf(server)],
    ];
    for (const [name, file] of files) {
      const text = await readFile(file, 'utf8').catch(() => '');
      out.push(`--- ${id} ${name}:`, ...text.split('\n').slice(-25));
    }
  }
  return out.join('\n');
}

async function createCluster(): Promise<{ cluster: ClusterView; seconds: number }> {
  const started = performance.now();
  const res = await api('POST', '/clusters', {
    cluster: { name: `galera-${Date.now()}`, datastore, instances: [member, member, member] },
  });
  expect(res.status, res.text).toBe(200);
  const id = (res.json?.cluster as ClusterView | undefined)?.id;
  let last: unknown;
  const cluster = await waitUntil(
    `cluster ${id} built`,
    async () => {
      const view = (await api('GET', `/clusters/${id}`)).json?.cluster as ClusterView;
      last = view;
      const failed = view.instances.find((i) => i.status === 'ERROR');
      if (failed)
        throw new Error(`member ${failed.id} failed: ${(await api('GET', `/instances/${failed.id}`)).text}`);
      return view.task.name === 'NONE' ? view : undefined;
    },
    { timeoutMs: 420_000, intervalMs: 500 },
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}\n${await engineLogs(id)}`);
  });
  return { cluster, seconds: (performance.now() - started) / 1000 };
}

beforeAll(async () => {
  admin = await login('admin', 'admin');
});

describe('a MariaDB Galera cluster of three members', () => {
  let cluster: ClusterView;
  let createSeconds = 0;
  const members: Member[] = [];

  beforeAll(async () => {
    ({ cluster, seconds: createSeconds } = await createCluster());
    console.log(`galera: 3-member cluster created in ${createSeconds.toFixed(1)} s`);
    for (const { id } of cluster.instances) {
      const view = (await api('GET', `/instances/${id}`)).json?.instance as InstanceView;
      const { ca_certificate: ca } = await instanceSsl(admin, view);
      members.push({ id, server: await serverIdOf(id), ...endpointOf(view), ca });
    }
    // Trove's cluster root: one password on every member.
    const root = await api('POST', `/clusters/${cluster.id}/root`);
    expect(root.status, root.text).toBe(200);
    rootPassword = (root.json as { user: { password: string } }).user.password;
  }, 480_000);

  afterAll(async () => {
    if (cluster && (await api('GET', `/clusters/${cluster.id}`)).status === 200)
      await api('DELETE', `/clusters/${cluster.id}`);
  });

  it('is ready only with every member Synced in one cluster of three', async () => {
    expect(cluster.instances.map((i) => i.status)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
    for (const m of members)
      expect(await wsrep(m)).toEqual({ wsrep_cluster_size: '3', wsrep_local_state_comment: 'Synced' });
  });

  it('shows on every member a row written on the first', async () => {
    const [first, ...others] = members as [Member, ...Member[]];
    await query(first, 'CREATE DATABASE IF NOT EXISTS shop');
    await query(first, 'CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, item VARCHAR(40))');
    await query(first, 'INSERT INTO shop.orders (item) VALUES (?)', ['written on member 1']);
    // Galera commits on every member before the writer's commit returns: no waiting.
    for (const m of others)
      expect(await query(m, 'SELECT item FROM shop.orders')).toEqual([{ item: 'written on member 1' }]);
  });

  it('leads its address to a member that takes queries', async () => {
    const shown = (await api('GET', `/clusters/${cluster.id}`)).json?.cluster as ClusterView;
    const address = shown.ip?.[0]?.address;
    const target = members.find((m) => m.host === address) as Member;
    expect(target).toBeDefined();
    expect((await wsrep(target)).wsrep_local_state_comment).toBe('Synced');
  });

  if (FULL) {
    it('keeps taking writes while the first member’s engine is down; restarted, it rejoins and catches up', async () => {
      const [first, second, third] = members as [Member, Member, Member];
      const killed = signal(guestProcesses(baseDirOf(first.server as string)).engine, 'SIGKILL');
      expect(killed).toBeGreaterThan(0);
      await waitUntil(
        'the others see the first member gone',
        async () => ((await wsrep(second)).wsrep_cluster_size === '2' ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      for (const [i, m] of [second, third, second, third].entries())
        await query(m, 'INSERT INTO shop.orders (item) VALUES (?)', [`while member 1 was down #${i}`]);
      // Trove's restart (an admin's, allowed on a member): the engine starts and joins by IST.
      const restart = await api('POST', `/instances/${first.id}/action`, { restart: {} });
      expect(restart.status, restart.text).toBe(202);
      await waitForInstance(admin, first.id, healthy, 120_000);
      // Rejoined the cluster of three, not a new cluster of its own (size 1).
      expect(
        await waitUntil(
          'the first member synced again',
          async () => {
            const status = await wsrep(first).catch(() => undefined);
            return status?.wsrep_local_state_comment === 'Synced' ? status : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 250 },
        ),
      ).toEqual({ wsrep_cluster_size: '3', wsrep_local_state_comment: 'Synced' });
      const rows = await query<{ item: string }>(first, 'SELECT item FROM shop.orders ORDER BY id');
      expect(rows.map((r) => r.item)).toEqual([
        'written on member 1',
        ...[0, 1, 2, 3].map((i) => `while member 1 was down #${i}`),
      ]);
      await query(first, 'INSERT INTO shop.orders (item) VALUES (?)', ['after the rejoin']);
      expect(await query(third, 'SELECT COUNT(*) AS n FROM shop.orders')).toEqual([{ n: 6 }]);
    }, 240_000);

    it('grows to four by SST while a writer runs without a failed write, and shrinks back to three', async () => {
      const second = members[1] as Member;
      await query(second, 'CREATE TABLE shop.writes (id INT PRIMARY KEY AUTO_INCREMENT, at DOUBLE)');
      const writer = await connectTo(second);
      let writes = 0;
      const failures: string[] = [];
      let writing = true;
      const loop = (async () => {
        while (writing) {
          await writer
            .query('INSERT INTO shop.writes (at) VALUES (?)', [Date.now()])
            .then(() => writes++)
            .catch((err: Error) => failures.push(err.message));
          await new Promise((resolve) => setTimeout(resolve, 20)); // a steady writer, not a wait
        }
      })();
      const untilNone = (size: number) =>
        waitUntil(
          `cluster ${cluster.id} back to NONE with ${size} members`,
          async () => {
            const view = (await api('GET', `/clusters/${cluster.id}`)).json?.cluster as ClusterView;
            if (view.instances.some((i) => i.status === 'ERROR'))
              throw new Error(`a member failed: ${JSON.stringify(view.instances)}`);
            return view.task.name === 'NONE' && view.instances.length === size ? view : undefined;
          },
          { timeoutMs: 300_000, intervalMs: 500 },
        );
      try {
        const grow = await api('POST', `/clusters/${cluster.id}`, { grow: [member] });
        expect(grow.status, grow.text).toBe(202);
        const grown = await untilNone(4);
        const addedId = grown.instances
          .map((i) => i.id)
          .find((id) => !members.some((m) => m.id === id)) as string;
        const view = (await api('GET', `/instances/${addedId}`)).json?.instance as InstanceView;
        const added: Member = {
          id: addedId,
          server: await serverIdOf(addedId),
          ...endpointOf(view),
          ca: (await instanceSsl(admin, view)).ca_certificate,
        };
        expect(await wsrep(added)).toEqual({ wsrep_cluster_size: '4', wsrep_local_state_comment: 'Synced' });
        const before = writes;
        expect(
          (await query<{ n: number }>(added, 'SELECT COUNT(*) AS n FROM shop.writes'))[0]?.n,
        ).toBeGreaterThanOrEqual(before);
        const shrink = await api('POST', `/clusters/${cluster.id}`, { shrink: [{ id: addedId }] });
        expect(shrink.status, shrink.text).toBe(202);
        await untilNone(3);
        // The task is NONE once the leaver's delete is under way (as Trove's shrink): its server
        // is gone when the instance is.
        await waitUntil(
          `instance ${addedId} deleted`,
          async () => ((await api('GET', `/instances/${addedId}`)).status === 404 ? true : undefined),
          { timeoutMs: 120_000, intervalMs: 500 },
        );
        await expectNothingLeft(addedId, admin.projectId, added.server);
        for (const m of members) expect((await wsrep(m)).wsrep_cluster_size).toBe('3');
      } finally {
        writing = false;
        await loop;
        await writer.end().catch(() => writer.destroy());
      }
      expect(failures).toEqual([]);
      expect(writes).toBeGreaterThan(0);
      for (const m of members)
        expect((await query<{ n: number }>(m, 'SELECT COUNT(*) AS n FROM shop.writes'))[0]?.n).toBe(writes);
    }, 600_000);

    it('figure: a cluster of three takes this long to create beside three single instances in parallel', async () => {
      const started = performance.now();
      const singles = await Promise.all(
        [1, 2, 3].map((i) =>
          createInstance(admin, {
            name: `galera-single-${i}`,
            flavorRef: '7',
            volume: { size: 1 },
            datastore,
          }),
        ),
      );
      for (const s of singles) await waitForInstance(admin, s.id, healthy, 240_000);
      const singleSeconds = (performance.now() - started) / 1000;
      console.log(
        `figure: 3-member Galera cluster created in ${createSeconds.toFixed(1)} s; ` +
          `3 single MariaDB instances created in parallel in ${singleSeconds.toFixed(1)} s (same run)`,
      );
      for (const s of singles) await deleteAndCheck(admin, s.id);
    }, 600_000);
  }

  it('is deleted with its members, leaving nothing behind', async () => {
    const res = await api('DELETE', `/clusters/${cluster.id}`);
    expect(res.status, res.text).toBe(202);
    await waitUntil(
      `cluster ${cluster.id} gone`,
      async () => ((await api('GET', `/clusters/${cluster.id}`)).status === 404 ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    for (const m of members) await expectNothingLeft(m.id, admin.projectId, m.server);
  }, 150_000);
});
