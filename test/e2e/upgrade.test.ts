import { execFile } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
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
import { baseDirOf, serverIdOf } from './leftovers.ts';

// Trove's upgrade end to end on real engines, one chain: PostgreSQL 15 with known data; an
// upgrade to 17 whose pg_upgrade is killed half-way comes back on 15 with the data intact and a
// fault naming the step; then 15 → 16 through the API and 16 → 17 with the real
// `openstack database instance upgrade`, the data's checksum equal at every version. What Trove
// refuses (the same version, a downgrade, another datastore's version) is a 400 that changes
// nothing. MariaDB's line: an instance created on 10.11.18 (Debian's older build, extracted
// beside the system's) upgraded to 10.11 (the system's 10.11.19) by mariadb-upgrade, and the
// backup taken first restored on 10.11.18; its build is made while the PostgreSQL chain runs.

const run = promisify(execFile);
const USER = { name: 'app', password: 'S3cret-pass!' };

let admin: Login;
let instance: InstanceView;
let mariadbId = '';
let baseDir = '';
let known = '';

const path = () => `/v1.0/${admin.projectId}/instances/${instance.id}`;
const upgrade = (version: string) =>
  call('PATCH', path(), admin.token, { instance: { datastore_version: version } });
const show = async () =>
  (await call('GET', path(), admin.token)).json?.instance as InstanceView & {
    datastore: { type: string; version: string };
  };

async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const { host, port } = endpointOf(instance);
  const c = new pg.Client({ host, port, user: USER.name, password: USER.password, database: 'appdb' });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** The data as the user reads it: row count and an md5 over every row in key order. */
async function checksum(): Promise<string> {
  const rows = await sql<{ sum: string }>(
    "SELECT count(*) || ':' || md5(string_agg(k::text || '=' || v || '=' || b::text, ',' ORDER BY k)) AS sum FROM kv",
  );
  return rows[0]?.sum ?? '';
}

const serverMajor = async () =>
  Math.floor(
    Number((await sql<{ v: string }>("SELECT current_setting('server_version_num') AS v"))[0]?.v) / 10_000,
  );

/** Waits for the upgrade to end: the task gone and the engine healthy, whatever the outcome. */
const settled = () => waitForInstance(admin, instance.id, healthy, 180_000);

/** SIGKILLs the instance's pg_upgrade (the program itself, not runuser) as soon as it runs. */
function killPgUpgrade(): Promise<number> {
  const run = join(baseDir, 'run');
  return waitUntil(
    'pg_upgrade to run',
    async () => {
      for (const entry of await readdir('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        if ((await readlink(`/proc/${entry}/cwd`).catch(() => '')) !== run) continue;
        const argv0 = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0')[0] ?? '';
        if (argv0.endsWith('/pg_upgrade')) {
          process.kill(Number(entry), 'SIGKILL');
          return Number(entry);
        }
      }
      return undefined;
    },
    { timeoutMs: 120_000, intervalMs: 20 },
  );
}

beforeAll(async () => {
  ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']);
  admin = await login('admin', 'admin');
  mariadbId = (
    await createInstance(admin, {
      name: `upgrade-mariadb-${Date.now()}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'mariadb', version: '10.11.18' },
      databases: [{ name: 'appdb' }],
      users: [{ ...USER, databases: [{ name: 'appdb' }] }],
    })
  ).id;
  const created = await createInstance(admin, {
    name: `upgrade-${Date.now()}`,
    flavorRef: '7',
    volume: { size: 1 },
    datastore: { type: 'postgresql', version: '15' },
    databases: [{ name: 'appdb' }],
    users: [{ ...USER, databases: [{ name: 'appdb' }] }],
  });
  instance = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
  baseDir = baseDirOf((await serverIdOf(instance.id)) ?? '');
  await sql('CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL, b bytea)');
  await sql(
    "INSERT INTO kv SELECT g, md5(g::text), decode(md5((g * 7)::text), 'hex') FROM generate_series(1, 20000) g",
  );
  await sql('CREATE INDEX kv_v ON kv (v)');
  known = await checksum();
}, 180_000);

afterAll(async () => {
  if (instance) await call('DELETE', path(), admin.token);
  if (mariadbId) await call('DELETE', `/v1.0/${admin.projectId}/instances/${mariadbId}`, admin.token);
});

describe('upgrade (PostgreSQL 15 → 16 → 17)', () => {
  it('refuses the same version, an unknown one and another datastore’s, changing nothing', async () => {
    const mysql = (await call('GET', `/v1.0/${admin.projectId}/datastores/mysql/versions`, admin.token)).json
      ?.versions as { id: string }[];
    const cases: [string, RegExp][] = [
      ['15', /already runs datastore version '15'/],
      ['9.6', /Datastore version '9.6' cannot be found/],
      [String(mysql[0]?.id), /belongs to datastore 'mysql', not 'postgresql'/],
    ];
    for (const [version, message] of cases) {
      const res = await upgrade(version);
      expect(res.status, version).toBe(400);
      expect(res.json?.badRequest, version).toMatchObject({
        code: 400,
        message: expect.stringMatching(message),
      });
    }
    const view = await show();
    expect(view).toMatchObject({ status: 'ACTIVE', datastore: { version: '15' } });
    expect(view.fault).toBeUndefined();
  });

  it('comes back on 15 with its data and a fault when pg_upgrade is killed half-way', async () => {
    const killed = killPgUpgrade();
    expect((await upgrade('17')).status).toBe(202);
    // The task shows, and refuses other actions meanwhile (422, as Trove).
    expect((await show()).status).toBe('UPGRADE');
    const refused = await call('POST', `${path()}/action`, admin.token, { restart: {} });
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.json)).toMatch(/task status was UPGRADING/);
    await killed;
    const view = await waitForInstance(admin, instance.id, (v) => healthy(v) && Boolean(v.fault), 180_000);
    expect(view?.fault?.message).toMatch(
      /Upgrading to datastore version 17 failed: .*failed at step pg_upgrade.*the instance runs on 15 again/s,
    );
    expect((await show()).datastore.version).toBe('15');
    expect(await serverMajor()).toBe(15);
    expect(await checksum()).toBe(known);
    // The backup taken first is there, of version 15, and restorable like any other.
    const backups = (await call('GET', `${path()}/backups`, admin.token)).json?.backups as {
      id: string;
      name: string;
      status: string;
      datastore: { version: string };
    }[];
    const before = backups.find((b) => b.name.endsWith('-before-upgrade-to-17'));
    expect(before).toMatchObject({ status: 'COMPLETED', datastore: { version: '15' } });
    // Its data runs on 15 only: restoring it as another version is refused.
    const misfit = await call('POST', `/v1.0/${admin.projectId}/instances`, admin.token, {
      instance: {
        name: 'restore-as-17',
        flavorRef: '7',
        volume: { size: 1 },
        datastore: { type: 'postgresql', version: '17' },
        restorePoint: { backupRef: String(before?.id) },
      },
    });
    expect(misfit.status).toBe(400);
    expect(JSON.stringify(misfit.json)).toMatch(/is of datastore version 15, not 17/);
  });

  it('upgrades 15 → 16 through the API and 16 → 17 with the CLI, the data equal each time', async () => {
    let started = performance.now();
    expect((await upgrade('16')).status).toBe(202);
    let view = await settled();
    console.log(`upgrade 15 -> 16 (e2e, dump and restore): ${(performance.now() - started).toFixed(0)} ms`);
    expect(view?.fault).toBeUndefined();
    expect((await show()).datastore.version).toBe('16');
    expect(await serverMajor()).toBe(16);
    expect(await checksum()).toBe(known);

    started = performance.now();
    await run('openstack', [...openstackAuth(), 'database', 'instance', 'upgrade', instance.id, '17'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: 60_000,
    });
    // The backup taken first alone outlasts the CLI's answer: the task shows.
    expect((await show()).status).toBe('UPGRADE');
    view = await settled();
    console.log(`upgrade 16 -> 17 (e2e, CLI): ${(performance.now() - started).toFixed(0)} ms`);
    expect(view?.fault).toBeUndefined();
    expect((await show()).datastore.version).toBe('17');
    expect(await serverMajor()).toBe(17);
    expect(await checksum()).toBe(known);

    // A downgrade is Trove's 400 and changes nothing.
    const down = await upgrade('15');
    expect(down.status).toBe(400);
    expect((down.json?.badRequest as { message?: string } | undefined)?.message).toMatch(
      /Downgrading from datastore version '17' to '15'/,
    );
    expect((await show()).datastore.version).toBe('17');
  });

  it('takes a full and an incremental backup on 17 (the CLI for the incremental); each restores its own point', async () => {
    const api = (method: string, p: string, body?: object) =>
      call(method, `/v1.0/${admin.projectId}${p}`, admin.token, body);
    const completed = (id: string) =>
      waitUntil(
        `backup ${id}`,
        async () => {
          const b = (await api('GET', `/backups/${id}`)).json?.backup as {
            status: string;
            parent_id?: string;
          };
          if (b.status === 'FAILED') throw new Error(`backup ${id} failed`);
          return b.status === 'COMPLETED' ? b : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    // The upgrade's own backup is of 15 (no manifest to build on): the chain starts with a full.
    const full = (await api('POST', '/backups', { backup: { name: 'on-17-full', instance: instance.id } }))
      .json?.backup as { id: string };
    await completed(full.id);
    const atFull = await checksum();
    await sql("UPDATE kv SET v = 'changed' WHERE k % 97 = 0");
    await sql('DELETE FROM kv WHERE k > 19900');
    const atIncremental = await checksum();
    expect(atIncremental).not.toBe(atFull);
    const { stdout } = await run(
      'openstack',
      [
        ...openstackAuth(),
        'database',
        'backup',
        'create',
        'on-17-inc',
        '--instance',
        instance.id,
        '--incremental',
        '-f',
        'json',
      ],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000 },
    );
    const incremental = JSON.parse(stdout) as { id: string };
    expect((await completed(incremental.id)).parent_id).toBe(full.id);
    await sql('DELETE FROM kv WHERE k < 100'); // after the incremental: in neither restore

    const restoreOf = async (backupId: string, name: string) => {
      const created = await createInstance(admin, {
        name,
        flavorRef: '7',
        volume: { size: 1 },
        datastore: { type: 'postgresql', version: '17' },
        restorePoint: { backupRef: backupId },
      });
      return (await waitForInstance(admin, created.id, healthy, 180_000)) as InstanceView;
    };
    const [fromFull, fromIncremental] = await Promise.all([
      restoreOf(full.id, `restored-full-${Date.now()}`),
      restoreOf(incremental.id, `restored-inc-${Date.now()}`),
    ]);
    try {
      const sumOn = async (target: InstanceView) => {
        const saved = instance;
        instance = target;
        try {
          return await checksum();
        } finally {
          instance = saved;
        }
      };
      expect(await sumOn(fromFull)).toBe(atFull);
      expect(await sumOn(fromIncremental)).toBe(atIncremental);
    } finally {
      await Promise.all([fromFull, fromIncremental].map((r) => api('DELETE', `/instances/${r.id}`)));
    }
  }, 300_000);
});

describe('upgrade (MariaDB 10.11.18 → 10.11)', () => {
  let view: InstanceView;
  let dataDir = '';
  let rows = '';
  const at = () => `/v1.0/${admin.projectId}/instances/${mariadbId}`;
  const upgradeTo = (version: string) =>
    call('PATCH', at(), admin.token, { instance: { datastore_version: version } });
  async function query(text: string, on = view): Promise<mysql.RowDataPacket[]> {
    const { host, port } = endpointOf(on);
    const c = await mysql.createConnection({
      host,
      port,
      user: USER.name,
      password: USER.password,
      database: 'appdb',
    });
    try {
      return (await c.query(text))[0] as mysql.RowDataPacket[];
    } finally {
      await c.end();
    }
  }
  const status = async () =>
    ((await call('GET', at(), admin.token)).json?.instance as InstanceView | undefined)?.status;
  const serverVersion = async (on = view) => String((await query('SELECT VERSION() AS v', on))[0]?.v);
  const checksum = async (on = view) =>
    String(
      (
        await query("SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(k, '=', v ORDER BY k))) AS s FROM kv", on)
      )[0]?.s,
    );
  /** The restore of the backup taken before the upgrade, started as soon as that backup is there. */
  let restoredId = '';

  beforeAll(async () => {
    view = (await waitForInstance(admin, mariadbId, healthy, 180_000)) as InstanceView;
    dataDir = join(baseDirOf((await serverIdOf(mariadbId)) ?? ''), 'data');
    await query('CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(64) NOT NULL)');
    await query('INSERT INTO kv SELECT seq, MD5(seq) FROM seq_1_to_5000');
    rows = await checksum();
  }, 200_000);

  it('runs 10.11.18, and moves to 10.11 (10.11.19) by mariadb-upgrade with its rows intact', async () => {
    expect(await serverVersion()).toMatch(/^10\.11\.18-/);
    const started = performance.now();
    expect((await upgradeTo('10.11')).status).toBe(202);
    expect(await status()).toBe('UPGRADE');
    view = (await waitForInstance(
      admin,
      mariadbId,
      (v) => healthy(v) && v.status === 'ACTIVE',
      180_000,
    )) as InstanceView;
    console.log(`upgrade MariaDB 10.11.18 -> 10.11.19 (e2e): ${(performance.now() - started).toFixed(0)} ms`);
    expect(view.fault).toBeUndefined();
    expect(view.datastore).toMatchObject({ type: 'mariadb', version: '10.11', version_number: '10.11.19' });
    expect(await serverVersion()).toMatch(/^10\.11\.19-/);
    expect(await checksum()).toBe(rows);
    // mariadb-upgrade of 10.11.19 ran against the data dir and recorded itself there.
    expect((await readFile(join(dataDir, 'mysql_upgrade_info'), 'utf8')).trim()).toBe('10.11.19-MariaDB');
    // The backup taken first is of 10.11.18 (its own mariadb-backup took it).
    const backups = (await call('GET', `${at()}/backups`, admin.token)).json?.backups as {
      id: string;
      name: string;
      status: string;
      datastore: { version: string };
    }[];
    const before = backups.find((b) => b.name.endsWith('-before-upgrade-to-10.11'));
    expect(before).toMatchObject({ status: 'COMPLETED', datastore: { version: '10.11.18' } });
    restoredId = (
      await createInstance(admin, {
        name: `restored-10.11.18-${Date.now()}`,
        flavorRef: '7',
        volume: { size: 1 },
        datastore: { type: 'mariadb', version: '10.11.18' },
        restorePoint: { backupRef: String(before?.id) },
      })
    ).id;
  });

  it('refuses a downgrade to 10.11.18 and the same version: 400, nothing changed', async () => {
    const down = await upgradeTo('10.11.18');
    expect(down.status).toBe(400);
    expect((down.json?.badRequest as { message?: string } | undefined)?.message).toMatch(
      /Downgrading from datastore version '10.11.19' to '10.11.18' is not supported/,
    );
    expect((await upgradeTo('10.11')).status).toBe(400);
    expect(await status()).toBe('ACTIVE');
    expect(await serverVersion()).toMatch(/^10\.11\.19-/);
  });

  it('restores the backup taken before the upgrade on 10.11.18 (its own mariadb-backup prepares it)', async () => {
    try {
      const restored = (await waitForInstance(admin, restoredId, healthy, 180_000)) as InstanceView;
      expect(await serverVersion(restored)).toMatch(/^10\.11\.18-/);
      expect(await checksum(restored)).toBe(rows);
    } finally {
      await call('DELETE', `/v1.0/${admin.projectId}/instances/${restoredId}`, admin.token);
    }
  }, 200_000);
});
