import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { describeAccounts, type Login, type SqlSession } from './accounts.ts';

async function open(layout: EngineLayout, login: Login): Promise<SqlSession> {
  const conn = await mysql.createConnection({
    host: '127.0.0.1',
    port: layout.port,
    connectTimeout: 5_000,
    ...login,
  });
  conn.on('error', () => {}); // a killed session reports through its next query
  return {
    query: async (sql) => (await conn.query<mysql.RowDataPacket[]>(sql))[0],
    close: () => conn.end().catch(() => conn.destroy()),
  };
}

/** The way the agent administers it (root over the socket), to set up what only an operator would. */
async function asSocketRoot(layout: EngineLayout, sql: string[]): Promise<void> {
  const conn = await mysql.createConnection({
    socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
    user: 'root',
  });
  try {
    for (const statement of sql) await conn.query(statement);
  } finally {
    await conn.end();
  }
}

describeAccounts({
  name: 'mariadb',
  make: (layout) => new MariaDbManager(layout),
  open,
  rootUser: 'root',
  systemDatabases: ['mysql', 'information_schema', 'performance_schema', 'sys'],
  systemUsers: ['root', 'mariadb.sys', 'mysql'],
  reservedDatabase: 'mysql',
  // Trove's MySQLSchema: letters, digits, '_' and '-', with spaces, '?', '#' or '@' inside.
  oddDatabases: ['a b', 'a@b', 'a#b', 'x ? y', 'a-b', 'a_b', 'axb'],
  // No account for this client's host at all is refused before the password is even looked at.
  refused: /Access denied for user|is not allowed to connect/,
  // KILL CONNECTION closes the socket; mysql2 then refuses the next query.
  ended: /closed state|Connection lost/,
  extra: (current) => {
    it('drops passwordless root rows that would shadow root@% (pitfall 4)', async () => {
      const { manager, layout } = current();
      await asSocketRoot(layout, [
        "CREATE USER 'root'@'127.0.0.1'",
        "GRANT ALL ON *.* TO 'root'@'127.0.0.1'",
      ]);
      // Without the fix, this passwordless row lets anyone on the machine in as root over TCP.
      await (await open(layout, { user: 'root', password: '' })).close();
      await manager.enableRoot('shadow-free');
      await expect(open(layout, { user: 'root', password: '' })).rejects.toThrow(/Access denied/);
      await (await open(layout, { user: 'root', password: 'shadow-free' })).close();
      await manager.disableRoot();
      await expect(open(layout, { user: 'root', password: 'shadow-free' })).rejects.toThrow(/Access denied/);
    });

    it('ends only the sessions of the account in question', async () => {
      const { manager, layout } = current();
      // Two accounts of one name: a session from 127.0.0.1 belongs to the more specific one.
      await manager.createUsers([
        { name: 'twin', password: 'any-host', databases: [{ name: 'shop' }] },
        { name: 'twin', password: 'loopback', host: '127.0.0.1', databases: [{ name: 'shop' }] },
      ]);
      const session = await open(layout, { user: 'twin', password: 'loopback', database: 'shop' });
      try {
        await manager.revokeAccess('twin', '%', 'shop');
        expect(await session.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
        await manager.revokeAccess('twin', '127.0.0.1', 'shop');
        await expect(session.query('SELECT 1 AS one')).rejects.toThrow(/closed state|Connection lost/);
      } finally {
        await session.close();
      }
      await manager.deleteUser('twin', '%');
      await manager.deleteUser('twin', '127.0.0.1');
    });
  },
});
