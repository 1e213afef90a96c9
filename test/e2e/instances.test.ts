import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { SIDE_BY_SIDE } from './concurrency.ts';
import { call, cloud, type Login, login } from './helpers.ts';
import { type Endpoint, endpointFor, redisClient } from './instance-access.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';
import { portOpen, processesMentioning } from './processes.ts';

// Each engine end to end through the API: create with a user and a database, connect with the
// engine's own client at the address and port the instance shows, restart, delete, and check
// that nothing of the instance is left anywhere.
interface Engine {
  datastore: string;
  withUser: boolean;
  /** Over TLS verified against the deployment CA (GET /ssl), as a user who checks would connect. */
  write(at: Endpoint, value: string): Promise<void>;
  read(at: Endpoint): Promise<string | undefined>;
}

const USER = { name: 'appuser', password: 'S3cret-pass!' };

const engines: Engine[] = [
  {
    datastore: 'mysql',
    withUser: true,
    async write({ host, port, ca }, value) {
      const c = await mysql.createConnection({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'appdb',
      });
      await c.query('CREATE TABLE IF NOT EXISTS kv (v VARCHAR(64))');
      await c.query('INSERT INTO kv VALUES (?)', [value]);
      await c.end();
    },
    async read({ host, port, ca }) {
      const c = await mysql.createConnection({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'appdb',
      });
      const [rows] = await c.query('SELECT v FROM kv');
      await c.end();
      return (rows as { v: string }[])[0]?.v;
    },
  },
  {
    datastore: 'postgresql',
    withUser: true,
    async write({ host, port, ca }, value) {
      const c = new pg.Client({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'appdb',
      });
      await c.connect();
      await c.query('CREATE TABLE IF NOT EXISTS kv (v text)');
      await c.query('INSERT INTO kv VALUES ($1)', [value]);
      await c.end();
    },
    async read({ host, port, ca }) {
      const c = new pg.Client({
        host,
        port,
        ssl: { ca, rejectUnauthorized: true },
        user: USER.name,
        password: USER.password,
        database: 'appdb',
      });
      await c.connect();
      const { rows } = await c.query('SELECT v FROM kv');
      await c.end();
      return rows[0]?.v;
    },
  },
  {
    datastore: 'redis',
    withUser: false,
    async write(at, value) {
      const r = await redisClient(at);
      await r.set('kv', value);
      // Redis keeps data in memory: save it, so a restart must bring it back from disk.
      await r.save();
      r.disconnect();
    },
    async read(at) {
      const r = await redisClient(at);
      const v = await r.get('kv');
      r.disconnect();
      return v ?? undefined;
    },
  },
];

describe.each(engines)('$datastore instance lifecycle', SIDE_BY_SIDE, (engine) => {
  let admin: Login;
  beforeAll(async () => {
    admin = await login('admin', 'admin');
  });

  it('creates, serves, restarts and deletes without leaving anything behind', async () => {
    const created = await createInstance(admin, {
      name: `e2e-${engine.datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: engine.datastore },
      ...(engine.withUser
        ? { databases: [{ name: 'appdb' }], users: [{ ...USER, databases: [{ name: 'appdb' }] }] }
        : {}),
    });
    expect(created).toMatchObject({ status: 'BUILD', operating_status: '' });

    const ready = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
    const at = await endpointFor(admin, ready);
    const { port } = at;
    expect(port).toBeGreaterThan(0);
    expect(ready.volume).toMatchObject({ size: 1 });
    await engine.write(at, 'before restart');
    expect(await engine.read(at)).toBe('before restart');

    const restart = await call(
      'POST',
      `/v1.0/${admin.projectId}/instances/${created.id}/action`,
      admin.token,
      {
        restart: {},
      },
    );
    expect(restart.status).toBe(202);
    const during = await call('GET', `/v1.0/${admin.projectId}/instances/${created.id}`, admin.token);
    // The API marks the task before it answers; the guest's restart comes later.
    expect((during.json as { instance: InstanceView }).instance.status).toBe('REBOOT');
    await waitForInstance(admin, created.id, (i) => healthy(i));
    expect(await engine.read(at)).toBe('before restart');

    const serverId = String(ready.server_id);
    const baseDir = join(cloud().stateDir, 'compute', serverId);
    expect(processesMentioning(serverId).length).toBeGreaterThan(0);

    const removed = await call('DELETE', `/v1.0/${admin.projectId}/instances/${created.id}`, admin.token);
    expect(removed.status).toBe(202);
    await waitForInstance(admin, created.id, 'gone');
    await waitUntil('processes gone', async () =>
      processesMentioning(serverId).length === 0 ? true : undefined,
    );
    expect(await portOpen(port)).toBe(false);
    expect(existsSync(baseDir)).toBe(false);
    const sqs = new SQSClient({
      endpoint: cloud().endpoints.sqs,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await expect(
      sqs.send(new GetQueueUrlCommand({ QueueName: `troveless-local-guest-${created.id}` })),
    ).rejects.toThrow();
  });
});
