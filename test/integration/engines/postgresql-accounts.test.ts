import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { describeAccounts, type Login, type SqlSession } from './accounts.ts';

async function open(layout: EngineLayout, login: Login): Promise<SqlSession> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: layout.port,
    connectionTimeoutMillis: 5_000,
    ...login,
    database: login.database ?? 'postgres',
  });
  client.on('error', () => {}); // a terminated session reports through its next query
  await client.connect();
  return {
    query: async (sql) => (await client.query(sql)).rows,
    close: () => client.end().catch(() => {}),
  };
}

describeAccounts({
  name: 'postgresql',
  make: (layout) => new PostgresqlManager(layout),
  open,
  rootUser: 'postgres',
  systemDatabases: ['postgres', 'template0', 'template1'],
  systemUsers: ['postgres', 'pg_monitor', 'pg_read_all_data'],
  reservedDatabase: 'postgres',
  oddDatabases: ['a`b', 'a"b', 'a.b', 'x; DROP DATABASE y', "o'neil", 'a_b', 'axb'],
  refused: /password authentication failed|pg_hba\.conf rejects connection|no pg_hba\.conf entry/,
  // pg_terminate_backend: "terminating connection due to administrator command", then not queryable.
  ended: /not queryable|terminat/,
  extra: (current) => {
    it('writes user names with quotes into pg_hba.conf safely', async () => {
      const { manager, layout } = current();
      const users = [
        { name: 'a"b', password: 'q1', host: '127.0.0.1', databases: [{ name: 'shop' }] },
        { name: '"all"', password: 'q2', host: '10.9.9.9', databases: [{ name: 'shop' }] },
        { name: '+x, "y" #z', password: 'q3', host: '::1', databases: [{ name: 'shop' }] },
      ];
      await manager.createUsers(users);
      await (await open(layout, { user: 'a"b', password: 'q1', database: 'shop' })).close();
      await expect(open(layout, { user: '"all"', password: 'q2', database: 'shop' })).rejects.toThrow(
        /pg_hba\.conf rejects connection/,
      );
      // ::1 only; this client comes from 127.0.0.1.
      await expect(open(layout, { user: '+x, "y" #z', password: 'q3', database: 'shop' })).rejects.toThrow(
        /pg_hba\.conf rejects connection/,
      );
      // Everyone else is unaffected by those rules.
      const hba = await readFile(join(layout.baseDir, 'data', 'pg_hba.conf'), 'utf8');
      expect(hba).toContain('host all """all""" 10.9.9.9/32 scram-sha-256');
      expect(await manager.getUser('+x, "y" #z', '::1')).toMatchObject({ databases: [{ name: 'shop' }] });
      for (const u of users) await manager.deleteUser(u.name, u.host);
      expect(await readFile(join(layout.baseDir, 'data', 'pg_hba.conf'), 'utf8')).not.toContain('all"""');
    });

    it('ends on revoke only the sessions on that database', async () => {
      const { manager, layout } = current();
      await manager.createDatabases([{ name: 'second' }]);
      await manager.createUsers([
        { name: 'dual', password: 'dual-pw', databases: [{ name: 'shop' }, { name: 'second' }] },
      ]);
      const onShop = await open(layout, { user: 'dual', password: 'dual-pw', database: 'shop' });
      const onSecond = await open(layout, { user: 'dual', password: 'dual-pw', database: 'second' });
      try {
        await manager.revokeAccess('dual', '%', 'shop');
        await expect(onShop.query('SELECT 1 AS one')).rejects.toThrow(/not queryable|terminat/);
        expect(await onSecond.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      } finally {
        await onShop.close();
        await onSecond.close();
      }
      await manager.deleteUser('dual', '%');
      await manager.deleteDatabase('second');
    });

    it('keeps a deleted user`s tables, now owned by postgres', async () => {
      const { manager, layout } = current();
      await manager.createUsers([{ name: 'owner', password: 'owner-pw', databases: [{ name: 'shop' }] }]);
      const session = await open(layout, { user: 'owner', password: 'owner-pw', database: 'shop' });
      try {
        await session.query('CREATE TABLE owned (x INT)');
        await session.query('INSERT INTO owned VALUES (7)');
      } finally {
        await session.close();
      }
      await manager.deleteUser('owner', '%');
      await manager.enableRoot('root-for-check');
      const root = await open(layout, { user: 'postgres', password: 'root-for-check', database: 'shop' });
      try {
        expect(await root.query("SELECT tableowner FROM pg_tables WHERE tablename = 'owned'")).toEqual([
          { tableowner: 'postgres' },
        ]);
        expect(await root.query('SELECT x FROM owned')).toEqual([{ x: 7 }]);
      } finally {
        await root.close();
      }
      await manager.disableRoot();
    });
  },
});
