import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';

// Trove's databases, users, access and root against a real SQL engine, checked the way a client
// sees them: through the engine's own driver over TCP, as the user in question.

export interface Login {
  user: string;
  password: string;
  database?: string;
}

/** An open client session over TCP. */
export interface SqlSession {
  query(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export interface SqlSubject {
  name: string;
  make(layout: EngineLayout): ProcessEngine;
  /** Rejects when the login is refused. */
  open(layout: EngineLayout, login: Login): Promise<SqlSession>;
  /** The engine user Trove's root is (root@'%' on MariaDB, the postgres superuser on PostgreSQL). */
  rootUser: string;
  /** The engine's own databases and users, which the lists must leave out. */
  systemDatabases: string[];
  systemUsers: string[];
  /** A reserved database name and user name, refused with BadRequest. */
  reservedDatabase: string;
  /**
   * Seven odd database names the engine's rules (lib/databases/rules) let through, the last two
   * 'a_b' and 'axb' (in MariaDB, _ in a grant would be a wildcard matching axb).
   */
  oddDatabases: string[];
  /** How the engine says no to a login (bad password, no such user, host not allowed). */
  refused: RegExp;
  /** How the driver reports a query on a session the agent ended (killed, terminated). */
  ended: RegExp;
  /** Engine-specific checks, run after the common ones on the same instance. */
  extra?: (current: () => { manager: ProcessEngine; layout: EngineLayout }) => void;
}

const ODD_PASSWORD = 'pa\'ss"wo`rd\\; --';

export function describeAccounts(subject: SqlSubject): void {
  describe(`${subject.name} databases, users, access and root`, () => {
    let layout: EngineLayout;
    let manager: ProcessEngine;

    beforeAll(async () => {
      layout = await tempLayout(`${subject.name}-acc`);
      manager = subject.make(layout);
      await manager.prepare({ memoryMb: 256, databases: [{ name: 'keep' }], users: [] });
    });
    afterAll(() => stopAndRemove(manager, layout));

    const open = (login: Login) => subject.open(layout, login);
    const as = async <T>(login: Login, work: (s: SqlSession) => Promise<T>): Promise<T> => {
      const session = await open(login);
      try {
        return await work(session);
      } finally {
        await session.close();
      }
    };
    /** Writes a row into `table` (one per user: PostgreSQL tables belong to their creator). */
    const writeAndCount = (login: Login, table = 't') =>
      as(login, async (s) => {
        await s.query(`CREATE TABLE IF NOT EXISTS ${table} (x INT)`);
        await s.query(`INSERT INTO ${table} VALUES (42)`);
        return Number((await s.query(`SELECT COUNT(*) AS n FROM ${table}`))[0]?.n);
      });
    const expectRefused = (login: Login) => expect(open(login)).rejects.toThrow(subject.refused);
    const rejectsNamed = (work: Promise<unknown>, name: string) =>
      expect(work).rejects.toMatchObject({ name });

    const bob = { user: 'bob', password: 'bob-secret', database: 'shop' };

    it('creates a database and a user with access; the user writes; the lists show them', async () => {
      await manager.createDatabases([{ name: 'shop' }, { name: 'other' }]);
      await manager.createUsers([{ name: 'bob', password: 'bob-secret', databases: [{ name: 'shop' }] }]);
      expect(await writeAndCount(bob)).toBe(1);

      const dbs = (await manager.listDatabases()).map((d) => d.name);
      expect(dbs).toEqual(['keep', 'other', 'shop']);
      for (const system of subject.systemDatabases) expect(dbs).not.toContain(system);

      const users = await manager.listUsers();
      expect(users).toEqual([{ name: 'bob', host: '%', databases: [{ name: 'shop' }] }]);
      for (const system of subject.systemUsers) expect(users.map((u) => u.name)).not.toContain(system);
      expect(await manager.getUser('bob', '%')).toEqual(users[0]);
      expect(await manager.listAccess('bob', '%')).toEqual([{ name: 'shop' }]);
      // Access to one database is not access to another.
      await expect(writeAndCount({ ...bob, database: 'other' })).rejects.toThrow(/denied/);
    });

    it('names its errors after Trove and creates nothing when one item already exists', async () => {
      await rejectsNamed(
        manager.createDatabases([{ name: 'fresh' }, { name: 'shop' }]),
        'DatabaseAlreadyExists',
      );
      expect((await manager.listDatabases()).map((d) => d.name)).not.toContain('fresh');
      const err = await manager
        .createUsers([
          { name: 'carol', password: 'carol-secret' },
          { name: 'bob', password: 'never-shown' },
        ])
        .catch((e: Error) => e);
      expect(err).toMatchObject({ name: 'UserAlreadyExists', message: expect.stringContaining('bob') });
      expect((err as Error).message).not.toContain('never-shown');
      expect(await manager.getUser('carol', '%')).toBeUndefined();

      await rejectsNamed(manager.deleteDatabase('nope'), 'DatabaseNotFound');
      await rejectsNamed(manager.deleteUser('nope', '%'), 'UserNotFound');
      await rejectsNamed(manager.listAccess('nope', '%'), 'UserNotFound');
      await rejectsNamed(manager.grantAccess('bob', '%', ['nope']), 'DatabaseNotFound');
      await rejectsNamed(manager.revokeAccess('bob', '%', 'nope'), 'DatabaseNotFound');
      await rejectsNamed(manager.changePasswords([{ name: 'nope', password: 'x' }]), 'UserNotFound');
      await rejectsNamed(
        manager.createUsers([{ name: 'dan', password: 'x', databases: [{ name: 'nope' }] }]),
        'DatabaseNotFound',
      );
      expect(await manager.getUser('dan', '%')).toBeUndefined();

      await rejectsNamed(manager.createDatabases([{ name: subject.reservedDatabase }]), 'BadRequest');
      await rejectsNamed(manager.deleteDatabase(subject.reservedDatabase), 'BadRequest');
      await rejectsNamed(manager.grantAccess('bob', '%', [subject.reservedDatabase]), 'BadRequest');
      await rejectsNamed(manager.createUsers([{ name: subject.rootUser, password: 'x' }]), 'BadRequest');
      await rejectsNamed(manager.createUsers([{ name: 'eve', password: '' }]), 'BadRequest');
      await rejectsNamed(manager.updateUser('bob', '%', {}), 'BadRequest');
      await rejectsNamed(manager.createUsers([{ name: 'eve', password: 'x', host: 'a b' }]), 'BadRequest');
      expect(await manager.getUser('bob', '10.1.2.3')).toBeUndefined();
    });

    it('revokes access: a new session is refused and an open one loses the database', async () => {
      const open = await subject.open(layout, bob);
      try {
        expect(await open.query('SELECT COUNT(*) AS n FROM t')).toHaveLength(1);
        await manager.revokeAccess('bob', '%', 'shop');
        await expect(open.query('SELECT COUNT(*) AS n FROM t')).rejects.toThrow(subject.ended);
      } finally {
        await open.close();
      }
      await expect(subject.open(layout, bob)).rejects.toThrow(/denied/);
      expect(await manager.listAccess('bob', '%')).toEqual([]);
    });

    it('grants access again: the user is back, and finds the data', async () => {
      await manager.grantAccess('bob', '%', ['shop', 'other']);
      expect(await writeAndCount(bob)).toBe(2);
      expect(await manager.listAccess('bob', '%')).toEqual([{ name: 'other' }, { name: 'shop' }]);
    });

    it('changes passwords and names: the new credentials work and the old ones do not', async () => {
      await manager.changePasswords([{ name: 'bob', password: 'bob-new' }]);
      await expectRefused(bob);
      expect(await writeAndCount({ ...bob, password: 'bob-new' })).toBe(3);

      await manager.updateUser('bob', '%', { name: 'robert', password: ODD_PASSWORD });
      await expectRefused({ ...bob, password: 'bob-new' });
      await expectRefused({ ...bob, password: ODD_PASSWORD });
      expect(await writeAndCount({ user: 'robert', password: ODD_PASSWORD, database: 'shop' })).toBe(4);
      expect(await manager.getUser('bob', '%')).toBeUndefined();
      expect(await manager.listAccess('robert', '%')).toEqual([{ name: 'other' }, { name: 'shop' }]);

      await manager.updateUser('robert', '%', { name: 'bob' });
      expect(await writeAndCount({ ...bob, password: ODD_PASSWORD })).toBe(5);
      bob.password = ODD_PASSWORD;
    });

    it('honours a user host: another address is refused, the user`s own one works', async () => {
      await manager.createUsers([
        { name: 'far', password: 'far-pw', host: '10.11.12.13', databases: [{ name: 'shop' }] },
        { name: 'near', password: 'near-pw', host: '127.0.0.1', databases: [{ name: 'shop' }] },
      ]);
      await expectRefused({ user: 'far', password: 'far-pw', database: 'shop' });
      expect(await writeAndCount({ user: 'near', password: 'near-pw', database: 'shop' }, 't_near')).toBe(1);
      expect(await manager.getUser('far', '10.11.12.13')).toMatchObject({ host: '10.11.12.13' });
      expect(await manager.getUser('far', '%')).toBeUndefined();
      const listed = (await manager.listUsers()).map((u) => `${u.name}@${u.host}`);
      expect(listed).toEqual(['bob@%', 'far@10.11.12.13', 'near@127.0.0.1']);

      // Moving hosts: onto a network that includes this client (given as CIDR), and off it; an
      // open session from an address no longer allowed ends.
      await manager.updateUser('far', '10.11.12.13', { host: '127.0.0.0/8' });
      expect(await manager.getUser('far', '127.0.0.0/8')).toMatchObject({ name: 'far' });
      expect(await writeAndCount({ user: 'far', password: 'far-pw', database: 'shop' }, 't_far')).toBe(1);
      const near = await open({ user: 'near', password: 'near-pw', database: 'shop' });
      try {
        await manager.updateUser('near', '127.0.0.1', { host: '10.0.0.1' });
        await expect(near.query('SELECT COUNT(*) AS n FROM t_near')).rejects.toThrow(subject.ended);
      } finally {
        await near.close();
      }
      await expectRefused({ user: 'near', password: 'near-pw', database: 'shop' });
      await manager.deleteUser('near', '10.0.0.1');
      await manager.deleteUser('far', '127.0.0.0/8');
    });

    it('deletes a user: its open session ends and it can no longer log in', async () => {
      const session = await open(bob);
      try {
        await manager.deleteUser('bob', '%');
        await expect(session.query('SELECT 1 AS one')).rejects.toThrow(subject.ended);
      } finally {
        await session.close();
      }
      await expectRefused(bob);
      expect(await manager.listUsers()).toEqual([]);
      await rejectsNamed(manager.deleteUser('bob', '%'), 'UserNotFound');
    });

    it('creates and uses odd names safely, touching nothing else', async () => {
      const odd = subject.oddDatabases;
      await manager.createDatabases([{ name: 'y' }]);
      await manager.createDatabases(odd.map((name) => ({ name })));
      const [first = '', second = '', third = '', fourth = '', , under = ''] = odd;
      const users = [
        { name: "o'neil", database: fourth },
        { name: 'a`b', database: second },
        { name: 'a"b', database: first },
        { name: 'x; DROP USER y', database: third },
        { name: 'under', database: under },
      ];
      await manager.createUsers(
        users.map((u) => ({ name: u.name, password: ODD_PASSWORD, databases: [{ name: u.database }] })),
      );
      for (const u of users) {
        expect(await writeAndCount({ user: u.name, password: ODD_PASSWORD, database: u.database })).toBe(1);
        expect(await manager.listAccess(u.name, '%')).toEqual([{ name: u.database }]);
      }
      // Nothing else was touched: y is still there, and nobody got access to it.
      expect((await manager.listDatabases()).map((d) => d.name)).toContain('y');
      // A grant on a_b is on that database only (in MariaDB, _ would be a wildcard matching axb).
      await expect(writeAndCount({ user: 'under', password: ODD_PASSWORD, database: 'axb' })).rejects.toThrow(
        /denied/,
      );
      expect((await manager.listDatabases()).map((d) => d.name)).toEqual(
        ['keep', 'other', 'shop', 'y', ...odd].sort(),
      );
      expect((await manager.listUsers()).map((u) => u.name)).toEqual(users.map((u) => u.name).sort());

      await manager.revokeAccess("o'neil", '%', fourth);
      await expect(open({ user: "o'neil", password: ODD_PASSWORD, database: fourth })).rejects.toThrow(
        /denied/,
      );
      for (const u of users) await manager.deleteUser(u.name, '%');
      for (const name of odd) await manager.deleteDatabase(name);
      expect((await manager.listDatabases()).map((d) => d.name)).toEqual(['keep', 'other', 'shop', 'y']);
    });

    it('deletes a database, and a new one of that name brings no old access with it', async () => {
      await manager.createUsers([{ name: 'fay', password: 'fay-pw', databases: [{ name: 'other' }] }]);
      await manager.deleteDatabase('other');
      await rejectsNamed(manager.deleteDatabase('other'), 'DatabaseNotFound');
      await manager.createDatabases([{ name: 'other' }]);
      expect(await manager.listAccess('fay', '%')).toEqual([]);
      await expect(open({ user: 'fay', password: 'fay-pw', database: 'other' })).rejects.toThrow(/denied/);
      await manager.deleteUser('fay', '%');
    });

    it('enables root with a password for TCP logins, and disables it; the agent keeps administering', async () => {
      const root = { user: subject.rootUser, password: 'R00t pw' };
      await expectRefused(root);
      await manager.enableRoot(root.password);
      await as(root, async (s) => expect(await s.query('SELECT 1 AS one')).toEqual([{ one: 1 }]));
      expect(await manager.status()).toBe('healthy');
      expect((await manager.listDatabases()).map((d) => d.name)).toContain('keep');

      await manager.enableRoot('second root pw');
      await expectRefused(root);
      const session = await open({ user: subject.rootUser, password: 'second root pw' });
      try {
        await manager.disableRoot();
        await expect(session.query('SELECT 1 AS one')).rejects.toThrow(subject.ended);
      } finally {
        await session.close();
      }
      await expectRefused({ user: subject.rootUser, password: 'second root pw' });
      expect(await manager.status()).toBe('healthy');
      await manager.createDatabases([{ name: 'after_root' }]);
      await manager.deleteDatabase('after_root');

      // Enabled again, it survives a restart; the agent still administers afterwards.
      await manager.enableRoot(root.password);
      await manager.restart();
      await as(root, async (s) => expect(await s.query('SELECT 1 AS one')).toEqual([{ one: 1 }]));
      await manager.disableRoot();
      await manager.restart();
      await expectRefused(root);
      expect((await manager.listDatabases()).map((d) => d.name)).toEqual(['keep', 'other', 'shop', 'y']);
    });

    subject.extra?.(() => ({ manager, layout }));
  });
}
