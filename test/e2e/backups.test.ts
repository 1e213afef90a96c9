import {
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lambdaInvoker } from '../../local/lambda.ts';
import { waitUntil } from '../../local/wait.ts';
import { IN_ORDER, SIDE_BY_SIDE } from './concurrency.ts';
import { call, cloud, e2eEngines, type Login, login } from './helpers.ts';
import { type Endpoint, endpointFor, redisClient } from './instance-access.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';
import { processesMentioning } from './processes.ts';

// Backups end to end: full (and incremental where the engine has one), restored into new
// instances whose data matches exactly what was there at each point; corrupted and missing
// objects fail the restore truthfully; a guest killed mid-backup leaves it FAILED.
const USER = { name: 'bk', password: 'Bk-pass-123' };
type Backup = {
  id: string;
  status: string;
  parent_id: string | null;
  locationRef: string | null;
  size: number | null;
};

interface Engine {
  datastore: string;
  incremental: boolean;
  body: Record<string, unknown>;
  /** Over TLS verified against the deployment CA (GET /ssl), as a user who checks would connect. */
  write(at: Endpoint, from: number, to: number): Promise<void>;
  digest(at: Endpoint): Promise<string>;
}

const allEngines: Engine[] = [
  {
    datastore: 'mysql',
    incremental: true,
    body: { databases: [{ name: 'bkdb' }], users: [{ ...USER, databases: [{ name: 'bkdb' }] }] },
    async write({ host, port, ca }, from, to) {
      const c = await mysql.createConnection({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'bkdb',
      });
      await c.query('CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, v VARCHAR(64))');
      const rows = Array.from({ length: to - from }, (_, i) => [from + i, `row-${from + i}`]);
      await c.query('INSERT INTO t VALUES ?', [rows]);
      await c.end();
    },
    async digest({ host, port, ca }) {
      const c = await mysql.createConnection({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'bkdb',
      });
      const [rows] = await c.query(
        "SELECT COUNT(*) AS n, MD5(GROUP_CONCAT(CONCAT(id, ':', v) ORDER BY id)) AS h FROM t",
      );
      await c.end();
      const r = (rows as { n: number; h: string }[])[0];
      return `${r?.n}:${r?.h}`;
    },
  },
  {
    datastore: 'postgresql',
    incremental: false,
    body: { databases: [{ name: 'bkdb' }], users: [{ ...USER, databases: [{ name: 'bkdb' }] }] },
    async write({ host, port, ca }, from, to) {
      const c = new pg.Client({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'bkdb',
      });
      await c.connect();
      await c.query('CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)');
      await c.query("INSERT INTO t SELECT g, 'row-' || g FROM generate_series($1::int, $2::int - 1) g", [
        from,
        to,
      ]);
      await c.end();
    },
    async digest({ host, port, ca }) {
      const c = new pg.Client({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'bkdb',
      });
      await c.connect();
      const { rows } = await c.query(
        "SELECT count(*) AS n, md5(string_agg(id || ':' || v, ',' ORDER BY id)) AS h FROM t",
      );
      await c.end();
      return `${rows[0].n}:${rows[0].h}`;
    },
  },
  {
    datastore: 'redis',
    incremental: false,
    body: {},
    async write(at, from, to) {
      const r = await redisClient(at);
      const pipeline = r.pipeline();
      for (let i = from; i < to; i++) pipeline.set(`k${i}`, `row-${i}`);
      await pipeline.exec();
      r.disconnect();
    },
    async digest(at) {
      const r = await redisClient(at);
      const keys = (await r.keys('k*')).sort();
      const values = keys.length ? await r.mget(...keys) : [];
      r.disconnect();
      return `${keys.length}:${keys.map((k, i) => `${k}=${values[i]}`).join(',').length}`;
    },
  },
];
// One engine per suite run unless TROVELESS_E2E_ENGINES says (helpers.ts: e2eEngines).
const engines = e2eEngines(allEngines, 1);
console.log(
  `backups e2e on ${engines.map((e) => e.datastore).join(', ')} (TROVELESS_E2E_ENGINES=all for every engine)`,
);

const s3 = () =>
  new S3Client({
    endpoint: cloud().endpoints.s3,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
const location = (b: Backup) => {
  const [, , bucket, ...key] = (b.locationRef ?? '').split('/');
  return { Bucket: bucket as string, Key: key.join('/') };
};

describe.each(engines)('$datastore backups', SIDE_BY_SIDE, (engine) => {
  let admin: Login;
  let source: InstanceView;
  const made: string[] = [];
  const api = (method: string, path: string, body?: object) =>
    call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
  const backup = async (body: Record<string, unknown>) => {
    const res = await api('POST', '/backups', {
      backup: { name: `bk-${Date.now()}`, instance: source.id, ...body },
    });
    expect(res.status).toBe(202);
    const id = (res.json as { backup: Backup }).backup.id;
    return waitUntil(
      `backup ${id}`,
      async () => {
        const b = (await api('GET', `/backups/${id}`)).json?.backup as Backup;
        if (b.status === 'FAILED') throw new Error(`backup failed: ${JSON.stringify(b)}`);
        return b.status === 'COMPLETED' ? b : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  };
  const restore = async (b: Backup) => {
    const created = await createInstance(admin, {
      name: `restored-${engine.datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: engine.datastore },
      restorePoint: { backupRef: b.id },
    });
    made.push(created.id);
    return created;
  };

  beforeAll(async () => {
    admin = await login('admin', 'admin');
    const created = await createInstance(admin, {
      name: `bk-source-${engine.datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: engine.datastore },
      ...engine.body,
    });
    made.push(created.id);
    source = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
  });
  afterAll(async () => {
    for (const id of made) await api('DELETE', `/instances/${id}`);
    for (const id of made) await waitForInstance(admin, id, 'gone').catch(() => undefined);
  });

  describe('in order', IN_ORDER, () => {
    it('restores each backup point into a new instance, exactly', async () => {
      const at = await endpointFor(admin, source);
      await engine.write(at, 0, 2000);
      const atFull = await engine.digest(at);
      const full = await backup({});
      expect(full).toMatchObject({ status: 'COMPLETED', parent_id: null });
      // Trove shows sizes in GB: a small backup rounds to 0, but it is known once COMPLETED.
      expect(full.size).not.toBeNull();
      expect(full.locationRef).toMatch(/^s3:\/\//);
      expect(
        ((await api('GET', `/instances/${source.id}`)).json as { instance: InstanceView }).instance.status,
      ).toBe('ACTIVE');

      await engine.write(at, 2000, 3000);
      const atIncremental = await engine.digest(at);
      let incremental: Backup | undefined;
      if (engine.incremental) {
        incremental = await backup({ incremental: 1 });
        expect(incremental.parent_id).toBe(full.id);
      } else {
        const refused = await api('POST', '/backups', {
          backup: { name: 'inc', instance: source.id, incremental: 1 },
        });
        expect(refused.status).toBe(501);
      }
      await engine.write(at, 3000, 3500);

      const fromFull = await waitForInstance(admin, (await restore(full)).id, healthy);
      expect(
        // A restored instance has its own certificate (and, for Redis, its own password).
        await engine.digest(await endpointFor(admin, fromFull as InstanceView)),
      ).toBe(atFull);
      if (incremental) {
        const fromIncremental = (await waitForInstance(
          admin,
          (
            await restore(incremental)
          ).id,
          healthy,
        )) as InstanceView;
        expect(await engine.digest(await endpointFor(admin, fromIncremental))).toBe(atIncremental);
      }
    });

    it('fails a restore from a corrupted or a missing object with ERROR and a fault', async () => {
      const b = await backup({});
      await s3().send(
        new PutObjectCommand({ ...location(b), Body: Buffer.from('not the backup you stored') }),
      );
      const corrupted = await restore(b);
      const failed = await waitForInstance(admin, corrupted.id, (i) => i.status === 'ERROR');
      expect(failed?.fault?.message).toMatch(/checksum|integrity|match/i);

      await s3().send(new DeleteObjectCommand(location(b)));
      const missing = await restore(b);
      const gone = await waitForInstance(admin, missing.id, (i) => i.status === 'ERROR');
      expect(gone?.fault?.message).toMatch(/not found|NoSuchKey|missing|does not exist/i);
    });
  });
});

describe('a guest killed mid-backup', SIDE_BY_SIDE, () => {
  it('leaves the backup FAILED, no upload open, and the instance free again', async () => {
    const admin = await login('admin', 'admin');
    const created = await createInstance(admin, {
      name: 'bk-kill',
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'redis' },
    });
    const view = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
    const res = await call('POST', `/v1.0/${admin.projectId}/backups`, admin.token, {
      backup: { name: 'doomed', instance: view.id },
    });
    const id = (res.json as { backup: Backup }).backup.id;
    // Redis waits 5 s before it streams a snapshot: the guest is killed while it waits.
    await waitUntil('backup building', async () => {
      const b = (await call('GET', `/v1.0/${admin.projectId}/backups/${id}`, admin.token)).json
        ?.backup as Backup;
      return b.status === 'BUILDING' ? b : undefined;
    });
    expect(
      (
        (await call('GET', `/v1.0/${admin.projectId}/instances/${view.id}`, admin.token)).json as {
          instance: InstanceView;
        }
      ).instance.status,
    ).toBe('BACKUP');
    for (const pid of processesMentioning(`${view.server_id}/agent.json`)) process.kill(pid, 'SIGKILL');
    const failed = await waitUntil(
      'backup failed',
      async () => {
        const b = (await call('GET', `/v1.0/${admin.projectId}/backups/${id}`, admin.token)).json
          ?.backup as Backup;
        return b.status === 'FAILED' ? b : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    expect(failed.status).toBe('FAILED');
    const uploads = await s3().send(
      new ListMultipartUploadsCommand({
        Bucket: 'troveless-local-backups',
        Prefix: `${admin.projectId}/${view.id}/`,
      }),
    );
    expect(uploads.Uploads ?? []).toEqual([]);
    const after = (
      (await call('GET', `/v1.0/${admin.projectId}/instances/${view.id}`, admin.token)).json as {
        instance: InstanceView;
      }
    ).instance;
    expect(after.status).not.toBe('BACKUP');
    await call('DELETE', `/v1.0/${admin.projectId}/instances/${view.id}`, admin.token);
    await waitForInstance(admin, view.id, 'gone');
    // Deleting an instance keeps its backups, as Trove does.
    expect((await call('GET', `/v1.0/${admin.projectId}/backups/${id}`, admin.token)).status).toBe(200);
  });
});

describe('scheduled backups', SIDE_BY_SIDE, () => {
  it('takes due backups once and prunes what retention no longer keeps', async () => {
    const admin = await login('admin', 'admin');
    const api = (method: string, path: string, body?: object) =>
      call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
    const created = await createInstance(admin, {
      name: 'bk-sched',
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'mysql' },
    });
    const view = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
    const put = await api('PUT', `/instances/${view.id}/backup_policy`, {
      backup_policy: { schedule: 'rate(1 hour)', full_every: 2, retention: { count: 2 } },
    });
    expect(put.status).toBe(200);
    const invoke = lambdaInvoker(cloud().endpoints.lambda);
    const tick = (hours: number) =>
      invoke('troveless-local-backupScheduler', {
        now: new Date(Date.now() + hours * 3600_000 + 60_000).toISOString(),
      }) as Promise<{
        started: string[];
        pruned: string[];
      }>;
    const settled = () =>
      waitUntil(
        'scheduled backups settled',
        async () => {
          const list = (await api('GET', `/instances/${view.id}/backups`)).json?.backups as Backup[];
          return list.every((b) => b.status === 'COMPLETED') ? list : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      );

    expect((await tick(1)).started).toHaveLength(1);
    expect((await tick(1)).started).toHaveLength(0); // the same window again: nothing twice
    const [first] = await settled();
    for (const hour of [2, 3, 4]) {
      expect((await tick(hour)).started).toHaveLength(1);
      await settled();
    }
    const before = await settled();
    // full_every 2: full, incremental, full, incremental.
    expect(before.filter((b) => b.parent_id)).toHaveLength(2);
    expect(before).toHaveLength(4);
    // count 2 keeps the two newest completed backups and whatever they build on; the fifth run
    // makes the first full and its incremental expendable.
    const fifth = await tick(5);
    expect(fifth.started).toHaveLength(1);
    expect(fifth.pruned).toHaveLength(2);
    expect(fifth.pruned).toContain(first?.id);
    const after = await settled();
    expect(after).toHaveLength(3);
    for (const b of after) if (b.parent_id) expect(after.map((x) => x.id)).toContain(b.parent_id);
    await api('DELETE', `/instances/${view.id}`);
    await waitForInstance(admin, view.id, 'gone');
  });
});
