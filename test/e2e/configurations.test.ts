import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type Login, login } from './helpers.ts';
import { type Endpoint, enableRoot, endpointFor, redisClient } from './instance-access.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';

// Configuration groups end to end: the engine itself reports the values (SHOW VARIABLES, SHOW,
// CONFIG GET); dynamic ones at once, restart-only ones after RESTART_REQUIRED and a restart.
interface Case {
  datastore: string;
  dynamic: { name: string; value: string | number; shown: string };
  restartOnly?: { name: string; value: number; shown: string };
  /** As root, over TLS verified against the instance CA. */
  read(at: Endpoint, name: string): Promise<string>;
}

const cases: Case[] = [
  {
    datastore: 'mysql',
    dynamic: { name: 'max_connections', value: 123, shown: '123' },
    restartOnly: { name: 'back_log', value: 77, shown: '77' },
    async read(at, name) {
      const c = await mysql.createConnection({
        host: at.host,
        port: at.port,
        user: 'root',
        password: at.password,
        ssl: { ca: at.ca },
      });
      const [rows] = await c.query('SHOW GLOBAL VARIABLES LIKE ?', [name]);
      await c.end();
      return String((rows as { Value: string }[])[0]?.Value);
    },
  },
  {
    datastore: 'postgresql',
    dynamic: { name: 'work_mem', value: 8192, shown: '8MB' },
    restartOnly: { name: 'max_connections', value: 123, shown: '123' },
    async read(at, name) {
      const c = new pg.Client({
        host: at.host,
        port: at.port,
        user: 'postgres',
        password: at.password,
        database: 'postgres',
        ssl: { ca: at.ca },
      });
      await c.connect();
      const { rows } = await c.query(`SHOW ${pg.escapeIdentifier(name)}`);
      await c.end();
      return String(Object.values(rows[0] as object)[0]);
    },
  },
  {
    datastore: 'redis',
    dynamic: { name: 'maxmemory-policy', value: 'allkeys-lru', shown: 'allkeys-lru' },
    async read(at, name) {
      const r = await redisClient(at);
      const [, value] = (await r.config('GET', name)) as string[];
      r.disconnect();
      return String(value);
    },
  },
];

describe.each(cases)('$datastore configuration groups', (c) => {
  let admin: Login;
  let view: InstanceView;
  let at: Endpoint;
  const api = (method: string, path: string, body?: object) =>
    call(method, `/v1.0/${admin.projectId}${path}`, admin.token, body);
  const read = (name: string) => c.read(at, name);
  const status = async () =>
    ((await api('GET', `/instances/${view.id}`)).json as { instance: InstanceView }).instance;
  const restart = async () => {
    expect((await api('POST', `/instances/${view.id}/action`, { restart: {} })).status).toBe(202);
    await waitForInstance(admin, view.id, (i) => healthy(i));
  };
  const group = async (values: Record<string, unknown>) => {
    const res = await api('POST', '/configurations', {
      configuration: { name: `e2e-${c.datastore}-${Date.now()}`, values, datastore: { type: c.datastore } },
    });
    expect(res.status).toBe(200);
    return (res.json as { configuration: { id: string } }).configuration.id;
  };

  beforeAll(async () => {
    admin = await login('admin', 'admin');
    const created = await createInstance(admin, {
      name: `e2e-config-${c.datastore}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: c.datastore },
    });
    view = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
    // Redis's endpoint comes with root's password; the others' root is enabled here.
    at = await endpointFor(admin, view);
    at.password ??= await enableRoot(admin, view);
  });
  afterAll(async () => {
    if (!view) return;
    await api('DELETE', `/instances/${view.id}`);
    await waitForInstance(admin, view.id, 'gone');
  });

  it('lists the parameters of the version', async () => {
    const versions = (await api('GET', `/datastores/${c.datastore}/versions`)).json as {
      versions: { id: string }[];
    };
    const vid = versions.versions[0]?.id;
    const params = (await api('GET', `/datastores/versions/${vid}/parameters`)).json as {
      'configuration-parameters': { name: string; restart_required: boolean }[];
    };
    expect(params['configuration-parameters'].length).toBeGreaterThanOrEqual(
      c.datastore === 'redis' ? 15 : 25,
    );
    const one = (await api('GET', `/datastores/versions/${vid}/parameters/${c.dynamic.name}`)).json;
    expect(one).toMatchObject({ name: c.dynamic.name, restart_required: false, datastore_version_id: vid });
  });

  it('applies a dynamic value at once and detaches back to the default', async () => {
    const before = await read(c.dynamic.name);
    const id = await group({ [c.dynamic.name]: c.dynamic.value });
    expect((await api('PUT', `/instances/${view.id}`, { instance: { configuration: id } })).status).toBe(202);
    expect(await read(c.dynamic.name)).toBe(c.dynamic.shown);
    expect(await status()).toMatchObject({ status: 'ACTIVE', configuration: { id } });
    const shown = (await api('GET', `/configurations/${id}`)).json as {
      configuration: { instance_count: number };
    };
    expect(shown.configuration.instance_count).toBe(1);
    expect((await api('DELETE', `/configurations/${id}`)).status).toBe(400);

    expect((await api('PUT', `/instances/${view.id}`, { instance: { configuration: null } })).status).toBe(
      202,
    );
    expect(await read(c.dynamic.name)).toBe(before);
    expect((await api('DELETE', `/configurations/${id}`)).status).toBe(202);
  });

  // Defined only for engines with a restart-only parameter (every Redis one here is dynamic).
  const p = c.restartOnly;
  if (p)
    it('holds a restart-only value as RESTART_REQUIRED until a restart', async () => {
      const before = await read(p.name);
      const id = await group({ [p.name]: p.value });
      expect((await api('PUT', `/instances/${view.id}`, { instance: { configuration: id } })).status).toBe(
        202,
      );
      expect((await status()).status).toBe('RESTART_REQUIRED');
      expect(await read(p.name)).toBe(before);
      await restart();
      expect(await read(p.name)).toBe(p.shown);
      expect((await status()).status).toBe('ACTIVE');
      await restart();
      expect(await read(p.name)).toBe(p.shown);

      expect((await api('PUT', `/instances/${view.id}`, { instance: { configuration: null } })).status).toBe(
        202,
      );
      expect((await status()).status).toBe('RESTART_REQUIRED');
      await restart();
      expect(await read(p.name)).toBe(before);
      await api('DELETE', `/configurations/${id}`);
    });

  it('refuses bad values with 422 naming the parameter, and changes nothing', async () => {
    const id = await group({ [c.dynamic.name]: c.dynamic.value });
    await api('PUT', `/instances/${view.id}`, { instance: { configuration: id } });
    const wrongType = typeof c.dynamic.value === 'number' ? String(c.dynamic.value) : 5;
    for (const values of [{ [c.dynamic.name]: wrongType }, { no_such_parameter: 1 }]) {
      const res = await api('PATCH', `/configurations/${id}`, { configuration: { values } });
      expect(res.status).toBe(422);
      expect((res.json as { unprocessableEntity: { message: string } }).unprocessableEntity.message).toMatch(
        new RegExp(Object.keys(values)[0] as string),
      );
    }
    if (typeof c.dynamic.value === 'number') {
      const res = await api('PATCH', `/configurations/${id}`, {
        configuration: { values: { [c.dynamic.name]: -5 } },
      });
      expect(res.status).toBe(422);
    }
    const kept = (await api('GET', `/configurations/${id}`)).json as { configuration: { values: object } };
    expect(kept.configuration.values).toEqual({ [c.dynamic.name]: c.dynamic.value });
    expect(await read(c.dynamic.name)).toBe(c.dynamic.shown);
    await api('PUT', `/instances/${view.id}`, { instance: { configuration: null } });
    await api('DELETE', `/configurations/${id}`);
  });
});
