import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListExecutionsCommand, ListStateMachinesCommand } from '@aws-sdk/client-sfn';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../local/prerequisites.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login, openstackAuth } from './helpers.ts';
import {
  createInstance,
  endpointOf,
  healthy,
  type InstanceView,
  waitForInstance,
} from './instance-helpers.ts';
import { baseDirOf, expectNothingLeft, serverIdOf, sfn } from './leftovers.ts';

// Trove's resize flavor and resize volume, end to end on PostgreSQL through the API and the real
// `openstack database instance resize ...`: the cgroup limit and shared_buffers follow the flavor,
// the data stays, a resize whose start fails reverts with a fault, and the volume grows while a
// writer keeps writing. Every engine's part (limits, memory settings, filesystem) is also checked
// against the compute host alone in test/security/resize.test.ts.

const run = promisify(execFile);
const MB = 1024 * 1024;
const USER = { name: 'app', password: 'S3cret-pass!' };

function openstack(...args: string[]) {
  const flags = openstackAuth();
  return run('openstack', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 60_000,
  });
}

let admin: Login;
let instance: InstanceView;
let serverId = '';

const action = (body: object) =>
  call('POST', `/v1.0/${admin.projectId}/instances/${instance.id}/action`, admin.token, body);
const show = async () =>
  (await call('GET', `/v1.0/${admin.projectId}/instances/${instance.id}`, admin.token)).json
    ?.instance as InstanceView & {
    flavor: { id: string };
    volume: { size: number };
  };

async function client(): Promise<pg.Client> {
  const { host, port } = endpointOf(instance);
  // Bounded, so that an engine that stops answering fails the step that met it, not the test's timeout.
  const c = new pg.Client({
    host,
    port,
    user: USER.name,
    password: USER.password,
    database: 'appdb',
    connectionTimeoutMillis: 10_000,
    query_timeout: 30_000,
  });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function sql<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]> {
  const c = await client();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function cgroupMemoryLimit(): Promise<number> {
  const v2 = join('/sys/fs/cgroup/troveless', serverId, 'memory.max');
  const v1 = join('/sys/fs/cgroup/memory/troveless', serverId, 'memory.limit_in_bytes');
  return Number((await readFile(existsSync(v2) ? v2 : v1, 'utf8')).trim());
}

/** Waits for the resize to end: the task gone (ACTIVE again), whatever the outcome. */
const settled = () =>
  waitForInstance(
    admin,
    instance.id,
    (v) => v.status === 'ACTIVE' && v.operating_status === 'HEALTHY',
    120_000,
  );

beforeAll(async () => {
  ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']);
  admin = await login('admin', 'admin');
  const created = await createInstance(admin, {
    name: `resize-${Date.now()}`,
    flavorRef: '7',
    volume: { size: 1 },
    datastore: { type: 'postgresql', version: '15' },
    databases: [{ name: 'appdb' }],
    users: [{ ...USER, databases: [{ name: 'appdb' }] }],
  });
  instance = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
  serverId = (await serverIdOf(instance.id)) ?? '';
  await sql('CREATE TABLE kv (k serial PRIMARY KEY, v text)');
  await sql("INSERT INTO kv (v) VALUES ('before any resize')");
}, 180_000);

afterAll(async () => {
  if (instance) await call('DELETE', `/v1.0/${admin.projectId}/instances/${instance.id}`, admin.token);
});

describe('resize (PostgreSQL, API and CLI)', () => {
  it('refuses what Trove refuses, with its faults', async () => {
    const cases: [object, number, RegExp][] = [
      [{ resize: { flavorRef: '7' } }, 400, /No change was requested/],
      [{ resize: { flavorRef: 'no-such-flavor' } }, 404, /no-such-flavor cannot be found/],
      [{ resize: { volume: { size: 1 } } }, 400, /must be larger than the current volume size of '1'/],
      [{ resize: { volume: { size: 11 } } }, 413, /cannot exceed maximum of 10 GB/],
      [{ resize: { flavorRef: '8', volume: { size: 2 } } }, 400, /at the same time/],
      [{ resize: {} }, 400, /Missing resize arguments/],
      [{ resize: { volume: { size: -1 } } }, 400, /Validation error/],
    ];
    for (const [body, status, message] of cases) {
      const res = await action(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(JSON.stringify(res.json)).toMatch(message);
    }
    expect((await show()).status).toBe('ACTIVE');
  });

  it('resizes the flavor up with the CLI and down with the API: limits and memory follow, data stays', async () => {
    expect(await cgroupMemoryLimit()).toBe(512 * MB);
    expect((await sql<{ shared_buffers: string }>('SHOW shared_buffers'))[0]?.shared_buffers).toBe('128MB');

    let started = performance.now();
    await openstack('database', 'instance', 'resize', 'flavor', instance.id, '8');
    // The task shows, and refuses another action meanwhile (422, as Trove).
    expect((await show()).status).toBe('RESIZE');
    const refused = await action({ restart: {} });
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.json)).toMatch(/task status was RESIZING/);
    let view = await settled();
    console.log(
      `resize flavor 512 MB -> 1024 MB (postgresql, e2e): ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect((await show()).flavor.id).toBe('8');
    expect(view?.fault).toBeUndefined();
    expect(await cgroupMemoryLimit()).toBe(1024 * MB);
    expect((await sql<{ shared_buffers: string }>('SHOW shared_buffers'))[0]?.shared_buffers).toBe('256MB');
    const cli = JSON.parse(
      (await openstack('database', 'instance', 'show', instance.id, '-f', 'json')).stdout,
    );
    expect(cli.flavor).toBe('8');

    started = performance.now();
    expect((await action({ resize: { flavorRef: '7' } })).status).toBe(202);
    view = await settled();
    console.log(
      `resize flavor 1024 MB -> 512 MB (postgresql, e2e): ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect((await show()).flavor.id).toBe('7');
    expect(await cgroupMemoryLimit()).toBe(512 * MB);
    expect((await sql<{ shared_buffers: string }>('SHOW shared_buffers'))[0]?.shared_buffers).toBe('128MB');
    expect((await sql<{ v: string }>('SELECT v FROM kv ORDER BY k'))[0]?.v).toBe('before any resize');
  });

  it('reverts a resize whose engine cannot start on the new flavor: old flavor, ACTIVE, a fault', async () => {
    const created = await call('POST', `/v1.0/${admin.projectId}/mgmt/flavors`, admin.token, {
      flavor: { name: `too-small-${Date.now()}`, ram: 16, vcpus: 1, disk: 1 },
    });
    expect(created.status).toBe(202);
    const tiny = String((created.json?.flavor as { str_id?: string } | undefined)?.str_id);
    try {
      expect((await action({ resize: { flavorRef: tiny } })).status).toBe(202);
      const view = await waitForInstance(
        admin,
        instance.id,
        (v) => v.status === 'ACTIVE' && Boolean(v.fault),
      );
      expect(view?.fault?.message).toMatch(new RegExp(`Resizing to flavor ${tiny} failed.*old flavor 7`));
      await waitForInstance(admin, instance.id, healthy);
      expect((await show()).flavor.id).toBe('7');
      expect(await cgroupMemoryLimit()).toBe(512 * MB);
      expect((await sql<{ v: string }>('SELECT v FROM kv ORDER BY k'))[0]?.v).toBe('before any resize');
    } finally {
      await call('DELETE', `/v1.0/${admin.projectId}/mgmt/flavors/${tiny}`, admin.token);
    }
  });

  it('grows the volume with the CLI while a writer writes: no write fails, df and volume.size agree', async () => {
    const writer = await client();
    const latencies: number[] = [];
    const errors: string[] = [];
    let writing = true;
    const loop = (async () => {
      while (writing) {
        const t = performance.now();
        try {
          await writer.query('INSERT INTO kv (v) VALUES ($1)', [`row at ${Date.now()}`]);
        } catch (err) {
          errors.push((err as Error).message);
        }
        latencies.push(performance.now() - t);
      }
    })();
    try {
      const started = performance.now();
      await openstack('database', 'instance', 'resize', 'volume', instance.id, '2');
      const view = await waitForInstance(
        admin,
        instance.id,
        (v) => healthy(v) && (v.volume as { size: number }).size === 2,
      );
      console.log(
        `resize volume 1 -> 2 GB (postgresql, e2e): ${(performance.now() - started).toFixed(0)} ms, ` +
          `${latencies.length} writes, max write latency ${Math.max(...latencies).toFixed(1)} ms`,
      );
      expect(view?.fault).toBeUndefined();
    } finally {
      writing = false;
      await loop;
      await writer.end();
    }
    expect(errors).toEqual([]);
    expect(latencies.length).toBeGreaterThan(0);
    const fs = await statfs(baseDirOf(serverId));
    const total = fs.blocks * fs.bsize;
    // The filesystem's own metadata takes a few percent of the volume.
    expect(total).toBeGreaterThan(0.9 * 2 * 1024 ** 3);
    expect(total).toBeLessThanOrEqual(2 * 1024 ** 3);
  });

  it('cures a full disk', async () => {
    const dir = baseDirOf(serverId);
    const fs = await statfs(dir);
    // The tenant's disk filled (by anything on its volume): leave PostgreSQL a few MB.
    const fill = join(dir, 'filler');
    await run('fallocate', ['-l', String(fs.bavail * fs.bsize - 4 * MB), fill]);
    const big = "INSERT INTO kv (v) SELECT repeat('x', 1000) FROM generate_series(1, 20000)";
    // The engine's own refusal: a data file it cannot extend or create, or, when the WAL is what
    // ran out of room, its PANIC, which ends the session (the postmaster then restarts it).
    await expect(sql(big)).rejects.toThrow(
      /No space left on device|could not (extend|create) file|Connection terminated unexpectedly/,
    );
    expect((await action({ resize: { volume: { size: 3 } } })).status).toBe(202);
    await waitForInstance(admin, instance.id, (v) => healthy(v) && (v.volume as { size: number }).size === 3);
    await waitUntil('the write to succeed', () => sql(big).then(() => true), {
      timeoutMs: 30_000,
      intervalMs: 1000,
    });
    expect((await sql<{ v: string }>('SELECT v FROM kv ORDER BY k'))[0]?.v).toBe('before any resize');
  });

  it('force deletes (CLI) in the middle of a resize: nothing left, the quota it held given back', async () => {
    const ramInUse = async () => {
      const res = await call('GET', `/v1.0/${admin.projectId}/mgmt/quotas/${admin.projectId}`, admin.token);
      const quotas = (res.json?.quotas ?? []) as { resource: string; in_use: number }[];
      return quotas.find((q) => q.resource === 'ram')?.in_use ?? Number.NaN;
    };
    const before = await ramInUse();
    expect((await action({ resize: { flavorRef: '8' } })).status).toBe(202);
    expect(await ramInUse()).toBe(before + 512);
    await openstack('database', 'instance', 'force', 'delete', instance.id);
    await waitForInstance(admin, instance.id, 'gone');
    await expectNothingLeft(instance.id, admin.projectId, serverId);
    // The instance's own 512 MB and the 512 MB the resize held.
    expect(await ramInUse()).toBe(before - 512);
    // The resize's workflow ends too (its steps find the instance gone), never left running.
    const machines = await sfn().send(new ListStateMachinesCommand({}));
    const arn = machines.stateMachines?.find((m) =>
      m.name?.endsWith('-instance-resize-flavor'),
    )?.stateMachineArn;
    await waitUntil(
      'the resize workflow to end',
      async () => {
        const out = await sfn().send(new ListExecutionsCommand({ stateMachineArn: arn }));
        const mine = (out.executions ?? []).filter((e) => e.name?.startsWith(`resize-${instance.id}`));
        return mine.length > 0 && mine.every((e) => e.status !== 'RUNNING') ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
  });
});
