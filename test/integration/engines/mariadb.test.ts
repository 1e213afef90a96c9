import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout, PrepareOptions } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { closeServer, occupy, stopAndRemove, tempLayout } from './helpers.ts';
import { describeLifecycle } from './lifecycle.ts';

const options: PrepareOptions = {
  memoryMb: 512,
  databases: [{ name: 'app', character_set: 'utf8mb4', collate: 'utf8mb4_unicode_ci' }],
  users: [{ name: 'appuser', password: 'app-secret', databases: [{ name: 'app' }] }],
};

async function session<T>(
  layout: EngineLayout,
  login: { user: string; password: string; database?: string },
  work: (conn: mysql.Connection) => Promise<T>,
): Promise<T> {
  const conn = await mysql.createConnection({
    host: '127.0.0.1',
    port: layout.port,
    connectTimeout: 5_000,
    ...login,
  });
  try {
    return await work(conn);
  } finally {
    await conn.end();
  }
}

const asAppUser = { user: 'appuser', password: 'app-secret', database: 'app' };

describeLifecycle({
  name: 'mariadb',
  kind: 'mariadb',
  make: (layout) => new MariaDbManager(layout),
  options,
  write: (layout, key, value) =>
    session(layout, asAppUser, async (conn) => {
      await conn.query('CREATE TABLE IF NOT EXISTS kv (k VARCHAR(64) PRIMARY KEY, v TEXT)');
      await conn.query('REPLACE INTO kv VALUES (?, ?)', [key, value]);
    }),
  read: (layout, key) =>
    session(layout, asAppUser, async (conn) => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT v FROM kv WHERE k = ?', [key]);
      return rows[0]?.v as string | undefined;
    }),
  extra: (current) =>
    it('creates odd database and user names safely, and root when asked', async () => {
      const { manager, layout } = current();
      const odd = 'pa\'ss"wo`rd\\';
      await manager.prepare({
        ...options,
        // Trove's MySQLSchema allows spaces, '#', '?' and '@' inside a database name and '-'
        // anywhere, each of which needs quoting; a user name may hold quotes and backticks.
        databases: [...options.databases, { name: 'a b' }, { name: 'a#b' }, { name: 'x-y' }],
        users: [...options.users, { name: "o'ne`il", password: odd, databases: [{ name: 'a b' }] }],
        rootPassword: 'root-secret',
      });
      await session(layout, { user: "o'ne`il", password: odd, database: 'a b' }, async (conn) => {
        await conn.query('CREATE TABLE t (x INT)');
        await conn.query('INSERT INTO t VALUES (42)');
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT x FROM t');
        expect(rows[0]?.x).toBe(42);
        // The grant covers its own database only.
        await expect(conn.query('SELECT * FROM app.kv')).rejects.toThrow(/denied/);
      });
      const names = await session(layout, { user: 'root', password: 'root-secret' }, async (conn) => {
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW DATABASES');
        return rows.map((r) => r.Database as string);
      });
      expect(names).toEqual(expect.arrayContaining(['a b', 'a#b', 'x-y', 'app']));
    }),
});

describe('mariadb start failures', () => {
  let layout: EngineLayout | undefined;
  let manager: ProcessEngine | undefined;
  afterAll(() => stopAndRemove(manager, layout));

  it('rejects a memory size that is not one', async () => {
    layout = await tempLayout('mariadb-fail');
    manager = new MariaDbManager(layout);
    await expect(manager.prepare({ ...options, memoryMb: 0 })).rejects.toThrow(/memoryMb/);
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
    // 20 TB: half of it as buffer pool cannot be mapped on this machine.
    await expect(manager!.prepare({ ...options, memoryMb: 20_000_000 })).rejects.toThrow(
      /buffer_pool|Out of memory/,
    );
  });

  it('recovers on the same instance once the cause is gone', async () => {
    await manager!.prepare(options);
    expect(await manager!.status()).toBe('healthy');
  });
});
