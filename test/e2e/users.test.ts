import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_ORDER, SIDE_BY_SIDE } from './concurrency.ts';
import { call, type Login, login } from './helpers.ts';
import { enableRoot, endpointFor, redisClient } from './instance-access.ts';
import {
  createInstance,
  endpointOf,
  healthy,
  type InstanceView,
  waitForInstance,
} from './instance-helpers.ts';

// Databases, users, access and root through the API, checked with each engine's own client.
interface Session {
  query(sql: string): Promise<unknown>;
  close(): Promise<void>;
}
interface SqlEngine {
  datastore: 'mysql' | 'postgresql';
  rootName: string;
  connect(host: string, port: number, user: string, password: string, database?: string): Promise<Session>;
}

const engines: SqlEngine[] = [
  {
    datastore: 'mysql',
    rootName: 'root',
    async connect(host, port, user, password, database) {
      const c = await mysql.createConnection({ host, port, user, password, database, connectTimeout: 5000 });
      return { query: (sql) => c.query(sql), close: () => c.end() };
    },
  },
  {
    datastore: 'postgresql',
    rootName: 'postgres',
    async connect(host, port, user, password, database) {
      const c = new pg.Client({
        host,
        port,
        user,
        password,
        database: database ?? 'postgres',
        connectionTimeoutMillis: 5000,
      });
      c.on('error', () => {});
      await c.connect();
      return { query: (sql) => c.query(sql), close: () => c.end().catch(() => {}) };
    },
  },
];

const PASSWORD = 'Pass-w0rd!';

describe.each(engines)('$datastore databases, users and root', SIDE_BY_SIDE, (engine) => {
  let admin: Login;
  let view: InstanceView;
  let host: string;
  let port: number;
  const path = (p: string) => `/v1.0/${admin.projectId}/instances/${view.id}${p}`;
  const api = (method: string, p: string, body?: object) => call(method, path(p), admin.token, body);

  beforeAll(async () => {
    admin = await login('admin', 'admin');
    const created = await createInstance(admin, {
      name: `e2e-users-${engine.datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: engine.datastore },
    });
    view = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
    ({ host, port } = endpointOf(view));
  });
  afterAll(async () => {
    if (!view) return;
    await call('DELETE', `/v1.0/${admin.projectId}/instances/${view.id}`, admin.token);
    await waitForInstance(admin, view.id, 'gone');
  });

  describe('in order', IN_ORDER, () => {
    it('grants, revokes (cutting open sessions), grants again and deletes a user', async () => {
      expect((await api('POST', '/databases', { databases: [{ name: 'appdb' }] })).status).toBe(202);
      expect((await api('GET', '/databases')).json?.databases).toContainEqual(
        expect.objectContaining({ name: 'appdb' }),
      );
      const created = await api('POST', '/users', {
        users: [{ name: 'alice', password: PASSWORD, databases: [{ name: 'appdb' }] }],
      });
      expect(created.status).toBe(202);
      expect((await api('GET', '/users/alice')).json).toEqual({
        user: { name: 'alice', host: '%', databases: [{ name: 'appdb' }] },
      });

      const open = await engine.connect(host, port, 'alice', PASSWORD, 'appdb');
      await open.query('CREATE TABLE t (v INT)');
      await open.query('INSERT INTO t VALUES (1)');

      expect((await api('DELETE', '/users/alice/databases/appdb')).status).toBe(202);
      await expect(open.query('SELECT v FROM t')).rejects.toThrow();
      await open.close();
      await expect(engine.connect(host, port, 'alice', PASSWORD, 'appdb')).rejects.toThrow();
      expect((await api('GET', '/users/alice/databases')).json).toEqual({ databases: [] });

      expect((await api('PUT', '/users/alice/databases', { databases: [{ name: 'appdb' }] })).status).toBe(
        202,
      );
      const again = await engine.connect(host, port, 'alice', PASSWORD, 'appdb');
      await again.query('SELECT v FROM t');
      await again.close();

      expect((await api('DELETE', '/users/alice')).status).toBe(202);
      await expect(engine.connect(host, port, 'alice', PASSWORD, 'appdb')).rejects.toThrow();
      expect((await api('GET', '/users/alice')).status).toBe(404);
    });

    it('changes a password, and the old one stops working', async () => {
      await api('POST', '/users', {
        users: [{ name: 'bob', password: PASSWORD, databases: [{ name: 'appdb' }] }],
      });
      expect((await api('PUT', '/users', { users: [{ name: 'bob', password: 'N3w-pass!' }] })).status).toBe(
        202,
      );
      await expect(engine.connect(host, port, 'bob', PASSWORD, 'appdb')).rejects.toThrow();
      const s = await engine.connect(host, port, 'bob', 'N3w-pass!', 'appdb');
      await s.close();
      expect((await api('DELETE', '/users/bob')).status).toBe(202);
    });

    it('enables root with a password returned once, and disables it', async () => {
      expect((await api('GET', '/root')).json).toEqual({ rootEnabled: false });
      const enabled = await api('POST', '/root');
      expect(enabled.status).toBe(200);
      const user = (enabled.json as { user: { name: string; password: string } }).user;
      expect(user.name).toBe(engine.rootName);
      expect(user.password.length).toBeGreaterThanOrEqual(20);
      const root = await engine.connect(host, port, engine.rootName, user.password);
      await root.close();
      expect((await api('GET', '/root')).json).toEqual({ rootEnabled: true });

      expect((await api('DELETE', '/root')).status).toBe(204);
      await expect(engine.connect(host, port, engine.rootName, user.password)).rejects.toThrow();
      expect((await api('GET', '/root')).json).toEqual({ rootEnabled: false });
      expect((await api('DELETE', '/root')).status).toBe(404);
    });

    it('refuses reserved names with 400', async () => {
      const reservedDb =
        engine.datastore === 'mysql' ? ['mysql', 'information_schema'] : ['postgres', 'template1'];
      for (const name of reservedDb) {
        const res = await api('POST', '/databases', { databases: [{ name }] });
        expect(res.status).toBe(400);
        expect(res.json).toMatchObject({ badRequest: { code: 400 } });
      }
      for (const name of ['os_admin', engine.datastore === 'mysql' ? 'root' : 'postgres']) {
        const res = await api('POST', '/users', { users: [{ name, password: PASSWORD }] });
        expect(res.status).toBe(400);
      }
    });

    it('refuses or safely uses hostile names, and touches nothing else', async () => {
      const hostile = ['a`b', 'a"b', "o'neil", 'x; DROP DATABASE appdb'];
      for (const name of hostile) {
        const res = await api('POST', '/databases', { databases: [{ name }] });
        expect([202, 400]).toContain(res.status);
        if (res.status === 202) {
          const names = (
            (await api('GET', '/databases')).json as { databases: { name: string }[] }
          ).databases.map((d) => d.name);
          expect(names).toContain(name);
        }
        const user = await api('POST', '/users', { users: [{ name, password: PASSWORD }] });
        expect([202, 400]).toContain(user.status);
        if (user.status === 202) {
          const s = await engine.connect(host, port, name, PASSWORD);
          await s.close();
          expect((await api('DELETE', `/users/${encodeURIComponent(name)}`)).status).toBe(202);
        }
      }
      const names = (
        (await api('GET', '/databases')).json as { databases: { name: string }[] }
      ).databases.map((d) => d.name);
      expect(names).toContain('appdb');
    });

    it('lists 45 databases 20 at a time by marker, nothing lost or repeated', async () => {
      const wanted = Array.from({ length: 45 }, (_, i) => `page_${String(i).padStart(2, '0')}`);
      expect((await api('POST', '/databases', { databases: wanted.map((name) => ({ name })) })).status).toBe(
        202,
      );
      const seen: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const res = await api(
          'GET',
          `/databases?limit=20${marker ? `&marker=${encodeURIComponent(marker)}` : ''}`,
        );
        const page = (res.json as { databases: { name: string }[] }).databases.map((d) => d.name);
        expect(page.length).toBeLessThanOrEqual(20);
        seen.push(...page);
        const next = (res.json?.links as { href: string }[] | undefined)?.[0]?.href;
        marker = next ? (new URL(next).searchParams.get('marker') ?? undefined) : undefined;
        pages++;
      } while (marker && pages < 10);
      const pagedWanted = seen.filter((n) => n.startsWith('page_'));
      expect(pagedWanted).toEqual(wanted);
      expect(new Set(seen).size).toBe(seen.length);
    });
  });
});

describe('redis users, databases and root', SIDE_BY_SIDE, () => {
  let admin: Login;
  let view: InstanceView;
  beforeAll(async () => {
    admin = await login('admin', 'admin');
    const created = await createInstance(admin, {
      name: 'e2e-users-redis',
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'redis' },
    });
    view = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
  });
  afterAll(async () => {
    if (!view) return;
    await call('DELETE', `/v1.0/${admin.projectId}/instances/${view.id}`, admin.token);
    await waitForInstance(admin, view.id, 'gone');
  });

  describe('in order', IN_ORDER, () => {
    it('answers 501 for users and databases', async () => {
      for (const p of ['/users', '/databases']) {
        const res = await call('GET', `/v1.0/${admin.projectId}/instances/${view.id}${p}`, admin.token);
        expect(res.status).toBe(501);
        expect(res.json).toMatchObject({ notImplemented: { code: 501 } });
      }
    });

    it('never lets a client in without a password; root enable rotates it, over TLS verified by the CA', async () => {
      const at = await endpointFor(admin, view); // GET /ssl for the CA, POST /root for a password
      await expect(redisClient({ ...at, password: undefined })).rejects.toThrow(/NOAUTH/);
      const authed = await redisClient(at);
      expect(await authed.ping()).toBe('PONG');
      authed.disconnect();

      // Enabling root again rotates the password: the old one is refused from then on.
      const second = await enableRoot(admin, view);
      expect(second).not.toBe(at.password);
      await expect(redisClient(at)).rejects.toThrow(/WRONGPASS/);
      const rotated = await redisClient(at, second);
      expect(await rotated.ping()).toBe('PONG');
      rotated.disconnect();

      // Disabling root leaves a password only the guest knows, never none.
      const disabled = await call(
        'DELETE',
        `/v1.0/${admin.projectId}/instances/${view.id}/root`,
        admin.token,
      );
      expect(disabled.status).toBe(204);
      await expect(redisClient(at, second)).rejects.toThrow(/WRONGPASS/);
      await expect(redisClient({ ...at, password: undefined })).rejects.toThrow(/NOAUTH/);
    });
  });
});
