import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout, PrepareOptions } from '../../../agent/engines/manager.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { closeServer, occupy, stopAndRemove, tempLayout } from './helpers.ts';
import { describeLifecycle } from './lifecycle.ts';

const options: PrepareOptions = {
  memoryMb: 512,
  databases: [{ name: 'app' }],
  users: [{ name: 'appuser', password: 'app-secret', databases: [{ name: 'app' }] }],
};

async function session<T>(
  layout: EngineLayout,
  login: { user: string; password: string; database: string },
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: layout.port,
    connectionTimeoutMillis: 5_000,
    ...login,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const asAppUser = { user: 'appuser', password: 'app-secret', database: 'app' };

describeLifecycle({
  name: 'postgresql',
  kind: 'postgresql',
  make: (layout) => new PostgresqlManager(layout),
  options,
  write: (layout, key, value) =>
    session(layout, asAppUser, async (client) => {
      // Creating in schema public needs the explicit grant PostgreSQL 15 no longer gives PUBLIC.
      await client.query('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)');
      await client.query('INSERT INTO kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = $2', [key, value]);
    }),
  read: (layout, key) =>
    session(layout, asAppUser, async (client) => {
      const { rows } = await client.query<{ v: string }>('SELECT v FROM kv WHERE k = $1', [key]);
      return rows[0]?.v;
    }),
  extra: (current) =>
    it('creates odd database and user names safely, and root when asked', async () => {
      const { manager, layout } = current();
      const odd = 'pa\'ss"wo`rd\\';
      await manager.prepare({
        ...options,
        databases: [...options.databases, { name: 'a`b' }, { name: 'a"b' }, { name: "o'neil" }],
        users: [...options.users, { name: "o'neil", password: odd, databases: [{ name: 'a"b' }] }],
        rootPassword: 'root-secret',
      });
      await session(layout, { user: "o'neil", password: odd, database: 'a"b' }, async (client) => {
        await client.query('CREATE TABLE t (x INT)');
        await client.query('INSERT INTO t VALUES (42)');
        expect((await client.query('SELECT x FROM t')).rows).toEqual([{ x: 42 }]);
      });
      // CONNECT was granted on a"b only, and PUBLIC has none on the databases the agent creates.
      await expect(
        session(layout, { user: "o'neil", password: odd, database: 'a`b' }, async () => undefined),
      ).rejects.toThrow(/permission denied for database/);
      const names = await session(
        layout,
        { user: 'postgres', password: 'root-secret', database: 'postgres' },
        (c) =>
          c
            .query<{ datname: string }>('SELECT datname FROM pg_database')
            .then((r) => r.rows.map((row) => row.datname)),
      );
      expect(names).toEqual(expect.arrayContaining(['a`b', 'a"b', "o'neil", 'app']));
    }),
});

describe('postgresql start failures', () => {
  let layout: EngineLayout | undefined;
  let manager: ProcessEngine | undefined;
  afterAll(() => stopAndRemove(manager, layout));

  it('rejects a memory size that is not one', async () => {
    layout = await tempLayout('postgresql-fail');
    manager = new PostgresqlManager(layout);
    await expect(manager.prepare({ ...options, memoryMb: Number.NaN })).rejects.toThrow(/memoryMb/);
  });

  it('says the port is in use when it is', async () => {
    const server = await occupy(layout!.port);
    try {
      const err = await manager!.prepare(options).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EADDRINUSE', message: expect.stringMatching(/already in use/) });
      expect(await manager!.status()).toBe('shutdown');
      expect(await manager!.pid()).toBeUndefined();
    } finally {
      await closeServer(server);
    }
  });

  it('carries the engine log when the memory setting cannot work', async () => {
    // 20 TB: a quarter of it as shared_buffers cannot be mapped on this machine.
    await expect(manager!.prepare({ ...options, memoryMb: 20_000_000 })).rejects.toThrow(/shared memory/);
  });

  it('recovers on the same instance once the cause is gone', async () => {
    await manager!.prepare(options);
    expect(await manager!.status()).toBe('healthy');
  });
});
