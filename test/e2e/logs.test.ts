import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil } from '../../local/wait.ts';
import { api, call, type Login, login, openstackAuth } from './helpers.ts';
import { endpointFor, redisClient } from './instance-access.ts';
import {
  createInstance,
  endpointOf,
  healthy,
  type InstanceView,
  waitForInstance,
} from './instance-helpers.ts';
import { baseDirOf, serverIdOf } from './leftovers.ts';

const run = promisify(execFile);

// Guest logs end to end (issue 14): the real `openstack database log ...` commands enable a log
// in the engine, publish it through the guest into the bucket, and read it back with `log tail`
// and `log save`, which python-troveclient does through swiftclient against the catalog's
// object-store endpoint (lib/logs/swift.ts). Another project sees none of it.

function openstack(...args: string[]) {
  const flags = openstackAuth();
  return run('openstack', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 90_000,
  });
}

type LogRow = {
  name: string;
  status: string;
  published: number;
  pending: number;
  container: string;
  prefix: string;
};

async function logSet(id: string, name: string, ...flags: string[]): Promise<LogRow> {
  return JSON.parse((await openstack('database', 'log', 'set', id, name, ...flags, '-f', 'json')).stdout);
}

async function tail(id: string, name: string, lines = 1000): Promise<string> {
  const out = await openstack('database', 'log', 'tail', id, name, '--lines', String(lines));
  expect(out.stdout).not.toMatch(/^ERROR/m);
  return out.stdout;
}

async function save(id: string, name: string, dir: string): Promise<string> {
  const file = join(dir, `${id}-${name}.log`);
  const out = await openstack('database', 'log', 'save', id, name, '--file', file);
  expect(out.stdout).toContain(`written to ${file}`);
  return readFile(file, 'utf8');
}

/** The Swift facade, as swiftclient calls it. */
async function swift(method: string, who: Login, path: string, account = who.projectId) {
  const res = await fetch(`${api()}/v1/AUTH_${account}${path}`, {
    method,
    headers: { 'x-auth-token': who.token },
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function logFileOf(instanceId: string, relative: string): Promise<string> {
  const serverId = await serverIdOf(instanceId);
  if (!serverId) throw new Error(`no server for ${instanceId}`);
  const file = join(baseDirOf(serverId), relative);
  if (!existsSync(file)) throw new Error(`no ${file}`);
  return file;
}

describe('guest logs through the openstack CLI', () => {
  let admin: Login;
  let demo: Login;
  let dir: string;
  const instances: Record<'mysql' | 'postgresql' | 'redis', InstanceView> = {} as never;

  beforeAll(async () => {
    await ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']);
    admin = await login('admin', 'admin');
    demo = await login('demo', 'demo');
    dir = await mkdtemp(join(tmpdir(), 'tl-logs-'));
    const base = { flavorRef: '7', volume: { size: 1 } };
    const created = await Promise.all([
      createInstance(admin, {
        ...base,
        name: `logs-mysql-${Date.now()}`,
        datastore: { type: 'mysql', version: '10.11' },
        databases: [{ name: 'appdb' }],
        users: [{ name: 'app', password: 'S3cret-pass', databases: [{ name: 'appdb' }] }],
      }),
      createInstance(admin, {
        ...base,
        name: `logs-pg-${Date.now()}`,
        datastore: { type: 'postgresql', version: '15' },
        databases: [{ name: 'appdb' }],
        users: [{ name: 'app', password: 'S3cret-pass', databases: [{ name: 'appdb' }] }],
      }),
      createInstance(admin, {
        ...base,
        name: `logs-redis-${Date.now()}`,
        datastore: { type: 'redis', version: '7.0' },
      }),
    ]);
    const [m, p, r] = await Promise.all(created.map((c) => waitForInstance(admin, c.id, healthy, 240_000)));
    instances.mysql = m as InstanceView;
    instances.postgresql = p as InstanceView;
    instances.redis = r as InstanceView;
  }, 300_000);

  afterAll(async () => {
    for (const view of Object.values(instances)) {
      if (view?.id) await call('DELETE', `/v1.0/${admin.projectId}/instances/${view.id}`, admin.token);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists each engine’s logs as Trove shows them', async () => {
    const list = JSON.parse(
      (await openstack('database', 'log', 'list', instances.mysql.id, '-f', 'json')).stdout,
    ) as { Name: string; Type: string; Status: string; Container: string; Prefix: string }[];
    expect(list.map((l) => [l.Name, l.Type])).toEqual([
      ['general', 'USER'],
      ['slow_query', 'USER'],
      ['error', 'SYS'],
    ]);
    expect(list[0]).toMatchObject({ Status: 'Disabled', Container: 'None', Prefix: 'None' });
    const pg = await call(
      'GET',
      `/v1.0/${admin.projectId}/instances/${instances.postgresql.id}/log`,
      admin.token,
    );
    expect(((pg.json?.logs ?? []) as LogRow[]).map((l) => l.name)).toEqual([
      'general',
      'slow_query',
      'error',
    ]);
    const redis = await call(
      'GET',
      `/v1.0/${admin.projectId}/instances/${instances.redis.id}/log`,
      admin.token,
    );
    expect(((redis.json?.logs ?? []) as LogRow[]).map((l) => l.name)).toEqual(['slow_query', 'error']);
  });

  it('answers bad combinations as Trove does', async () => {
    const path = `/v1.0/${admin.projectId}/instances/${instances.mysql.id}/log`;
    const both = await call('POST', path, admin.token, { name: 'general', enable: 1, disable: 1 });
    expect(both.status).toBe(400);
    expect(both.json).toEqual({ badRequest: { code: 400, message: 'Cannot enable and disable log.' } });
    const sys = await call('POST', path, admin.token, { name: 'error', enable: 1 });
    expect(sys.status).toBe(400);
    expect(sys.json).toEqual({ badRequest: { code: 400, message: "Cannot enable a SYSTEM log ('error')." } });
    const unknown = await call('POST', path, admin.token, { name: 'audit' });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ itemNotFound: { code: 404, message: "Log 'audit' is not defined." } });
    const nameless = await call('POST', path, admin.token, { publish: 1 });
    expect(nameless.status).toBe(400);
  });

  it('mysql: general log enabled, statements published and read back by log tail and log save; then only what is new', async () => {
    const id = instances.mysql.id;
    expect((await logSet(id, 'general', '--enable')).status).toMatch(/^(Enabled|Ready)$/);
    const { host, port } = endpointOf(instances.mysql);
    const conn = await mysql.createConnection({
      host,
      port,
      user: 'app',
      password: 'S3cret-pass',
      database: 'appdb',
    });
    await conn.query("SELECT 'first-marker-0001'");
    await conn.query('CREATE TABLE t (id INT PRIMARY KEY)');
    const first = await logSet(id, 'general', '--publish');
    expect(first).toMatchObject({ container: 'database_logs', prefix: `${id}/mysql-general/` });
    // Everything up to the publish is published. The agent's own admin sessions (every heartbeat
    // here, 2 s) each leave their connect line in the general log: one that came after the
    // publish read the file makes the log Partial, with those lines pending, as Trove would say.
    expect(first.status).toMatch(/^(Published|Partial)$/);
    expect(first.published).toBeGreaterThan(0);
    const tailed = await tail(id, 'general');
    expect(tailed).toContain("SELECT 'first-marker-0001'");
    expect(tailed).toContain('CREATE TABLE t (id INT PRIMARY KEY)');
    expect(await save(id, 'general', dir)).toBe(tailed);

    await conn.query("SELECT 'second-marker-0002'");
    await conn.end();
    const second = await logSet(id, 'general', '--publish');
    expect(second.published).toBeGreaterThan(first.published);
    const listing = await swift(
      'GET',
      admin,
      `/database_logs?format=json&prefix=${encodeURIComponent(`${id}/mysql-general/`)}`,
    );
    expect(listing.status).toBe(200);
    const parts = JSON.parse(listing.text) as { name: string; bytes: number; last_modified: string }[];
    expect(parts).toHaveLength(2);
    expect(parts[0]?.bytes).toBe(first.published);
    expect(parts[1]?.bytes).toBe(second.published - first.published);
    const newest = await swift('GET', admin, `/database_logs/${parts[1]?.name}`);
    expect(newest.text).toContain("SELECT 'second-marker-0002'");
    expect(newest.text).not.toContain('first-marker-0001');
    const head = await swift('HEAD', admin, `/database_logs/${parts[1]?.name}`);
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('x-object-meta-lines'))).toBe(newest.text.split('\n').length - 1);
    const whole = await save(id, 'general', dir);
    // tail --lines 1 is the newest part's last line.
    expect(await tail(id, 'general', 1)).toBe(`${whole.trimEnd().split('\n').pop()}\n`);
    expect(whole).toContain('first-marker-0001');
    expect(whole.indexOf('first-marker-0001')).toBeLessThan(whole.indexOf('second-marker-0002'));
  });

  it('mysql: a rotated log shows Rotated, and the next publish starts over', async () => {
    const id = instances.mysql.id;
    await truncate(await logFileOf(id, 'logs/general.log'), 0); // logrotate's copytruncate
    const { host, port } = endpointOf(instances.mysql);
    const conn = await mysql.createConnection({
      host,
      port,
      user: 'app',
      password: 'S3cret-pass',
      database: 'appdb',
    });
    await conn.query("SELECT 'after-rotation-0003'");
    await conn.end();
    const shown = JSON.parse(
      (await openstack('database', 'log', 'show', id, 'general', '-f', 'json')).stdout,
    );
    expect(shown.status).toBe('Rotated');
    const fresh = await logSet(id, 'general', '--publish');
    expect(fresh.status).toMatch(/^(Published|Partial)$/);
    const text = await save(id, 'general', dir);
    expect(text).toContain('after-rotation-0003');
    expect(text).not.toContain('first-marker-0001');
  });

  it('another project can neither list, show, publish nor read the logs', async () => {
    const id = instances.mysql.id;
    const foreign = `/v1.0/${admin.projectId}/instances/${id}/log`;
    expect((await call('GET', foreign, demo.token)).status).toBe(403);
    expect((await call('POST', foreign, demo.token, { name: 'general', publish: 1 })).status).toBe(403);
    const own = `/v1.0/${demo.projectId}/instances/${id}/log`;
    expect((await call('GET', own, demo.token)).status).toBe(404);
    expect((await call('POST', own, demo.token, { name: 'general' })).status).toBe(404);
    // The Swift facade: not the admin project's account, and nothing of it under demo's own.
    expect((await swift('GET', demo, '/database_logs?format=json', admin.projectId)).status).toBe(403);
    const listing = await swift('GET', admin, `/database_logs?format=json&prefix=${id}/`);
    const name = (JSON.parse(listing.text) as { name: string }[])[0]?.name ?? '';
    expect(name).not.toBe('');
    expect((await swift('GET', demo, `/database_logs/${name}`, admin.projectId)).status).toBe(403);
    expect((await swift('GET', demo, `/database_logs/${name}`)).status).toBe(404);
    expect((await swift('HEAD', demo, `/database_logs/${name}`)).status).toBe(404);
    expect(JSON.parse((await swift('GET', demo, `/database_logs?format=json&prefix=${id}/`)).text)).toEqual(
      [],
    );
  });

  it('the object-store endpoint is read-only: anything else is 405 or 501, never a 500', async () => {
    for (const method of ['PUT', 'POST', 'DELETE']) {
      expect((await swift(method, admin, '/database_logs/x')).status).toBe(405);
    }
    expect((await swift('GET', admin, '')).status).toBe(501);
    expect((await swift('GET', admin, '/other?format=json')).status).toBe(404);
    const anonymous = await fetch(`${api()}/v1/AUTH_${admin.projectId}/database_logs?format=json`);
    expect(anonymous.status).toBe(401);
    const token = admin.body.token as { catalog: { type: string; endpoints: { url: string }[] }[] };
    expect(token.catalog.find((s) => s.type === 'object-store')?.endpoints[0]?.url).toBe(
      `${api()}/v1/AUTH_${admin.projectId}`,
    );
  });

  it('mysql: discard leaves nothing in the bucket', async () => {
    const id = instances.mysql.id;
    const view = await logSet(id, 'general', '--discard', '--disable');
    expect(view).toMatchObject({ status: 'Disabled', published: 0, container: 'None', prefix: 'None' });
    const listing = await swift('GET', admin, `/database_logs?format=json&prefix=${id}/`);
    expect(JSON.parse(listing.text)).toEqual([]);
    const tailed = await openstack('database', 'log', 'tail', id, 'general');
    expect(tailed.stdout).toMatch(/No published 'general' log was found/);
  });

  it('postgresql: log_statement=all through the general log, read back by log tail and log save', async () => {
    const id = instances.postgresql.id;
    await logSet(id, 'general', '--enable');
    const { host, port } = endpointOf(instances.postgresql);
    const client = new pg.Client({ host, port, user: 'app', password: 'S3cret-pass', database: 'appdb' });
    await client.connect();
    await client.query("SELECT 'pg-marker-0004'");
    await client.end();
    const view = await logSet(id, 'general', '--publish');
    // The server log also takes the engine's own lines (checkpoints, ...): more may follow at once.
    expect(view).toMatchObject({ prefix: `${id}/postgresql-general/` });
    expect(view.status).toMatch(/^(Published|Partial)$/);
    const tailed = await tail(id, 'general');
    expect(tailed).toContain("statement: SELECT 'pg-marker-0004'");
    expect(await save(id, 'general', dir)).toContain("statement: SELECT 'pg-marker-0004'");
  });

  it('redis: SLOWLOG as the slow_query log, read back by log tail', async () => {
    const id = instances.redis.id;
    const at = await endpointFor(admin, instances.redis);
    await logSet(id, 'slow_query', '--enable');
    const client = await redisClient(at);
    await client.call('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
    await client.set('redis-marker-0005', 'v');
    client.disconnect();
    // With a threshold of 0 the agent's own reads of SLOWLOG are slow entries too: more may follow.
    expect((await logSet(id, 'slow_query', '--publish')).status).toMatch(/^(Published|Partial)$/);
    expect(await tail(id, 'slow_query')).toContain('"redis-marker-0005"');
  });

  it('metrics: known load moves the engine counters, kept at heartbeat resolution; another project reads none', async () => {
    const id = instances.mysql.id;
    const path = `/v1.0/${admin.projectId}/instances/${id}/metrics`;
    const { host, port } = endpointOf(instances.mysql);
    const open = await Promise.all(
      [1, 2, 3].map(() =>
        mysql.createConnection({ host, port, user: 'app', password: 'S3cret-pass', database: 'appdb' }),
      ),
    );
    const loadFrom = Date.now();
    for (let i = 0; i < 300; i++) await open[i % 3]?.query('SELECT 1');
    type Point = { time: string; connections: number | null; queries_per_second: number | null };
    // Heartbeats come every 2 s here: the points after the load show it.
    const points = await waitUntil(
      'a heartbeat carrying the load',
      async () => {
        const res = await call('GET', path, admin.token);
        expect(res.status).toBe(200);
        const all = (res.json?.metrics as { points: Point[] } | undefined)?.points ?? [];
        const after = all.filter((p) => Date.parse(p.time) >= loadFrom - 1000);
        return after.some((p) => (p.queries_per_second ?? 0) >= 20) &&
          after.some((p) => (p.connections ?? 0) >= 3)
          ? all
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    await Promise.all(open.map((c) => c.end()));
    expect(points.length).toBeGreaterThan(2);
    const times = points.map((p) => Date.parse(p.time));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(Date.now() - (times[0] ?? 0)).toBeLessThanOrEqual(3_600_000);
    expect((await call('GET', path, demo.token)).status).toBe(403);
    expect((await call('GET', `/v1.0/${demo.projectId}/instances/${id}/metrics`, demo.token)).status).toBe(
      404,
    );
  });
});
