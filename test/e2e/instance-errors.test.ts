import { beforeAll, describe, expect, it } from 'vitest';
import { call, type Login, login } from './helpers.ts';

// Bad requests get Trove's status code and fault name, and nothing is created: the project's
// instance list and quota usage are the same afterwards.
const base = { name: 'bad', flavorRef: '7', volume: { size: 1 }, datastore: { type: 'redis' } };

const cases: Array<[string, unknown, number, string]> = [
  ['missing name', { instance: { ...base, name: undefined } }, 400, 'badRequest'],
  ['empty name', { instance: { ...base, name: '' } }, 400, 'badRequest'],
  ['name of the wrong type', { instance: { ...base, name: 123 } }, 400, 'badRequest'],
  ['missing flavor', { instance: { ...base, flavorRef: undefined } }, 400, 'badRequest'],
  ['unknown flavor', { instance: { ...base, flavorRef: '999' } }, 400, 'badRequest'],
  ['unknown datastore', { instance: { ...base, datastore: { type: 'nosuchdb' } } }, 404, 'itemNotFound'],
  [
    'unknown version',
    { instance: { ...base, datastore: { type: 'redis', version: '0.1' } } },
    400,
    'badRequest',
  ],
  ['volume too big', { instance: { ...base, volume: { size: 1000 } } }, 413, 'overLimit'],
  ['volume size not a number', { instance: { ...base, volume: { size: 'abc' } } }, 400, 'badRequest'],
  ['missing volume', { instance: { ...base, volume: undefined } }, 400, 'badRequest'],
  ['databases not a list', { instance: { ...base, databases: 'db1' } }, 400, 'badRequest'],
  ['no instance key', { name: 'x' }, 400, 'badRequest'],
  ['a list instead of an object', [base], 400, 'badRequest'],
  ['two nics', { instance: { ...base, nics: [{ 'net-id': 'a' }, { 'net-id': 'b' }] } }, 400, 'badRequest'],
  // Trove's first check of a replica create: a flavor comes from the source.
  ['replica_of with a flavor', { instance: { ...base, replica_of: 'x' } }, 400, 'badRequest'],
  [
    'a user of a database not created',
    {
      instance: {
        ...base,
        datastore: { type: 'mysql' },
        databases: [{ name: 'a' }],
        users: [{ name: 'u', password: 'p', databases: [{ name: 'b' }] }],
      },
    },
    400,
    'badRequest',
  ],
];

/**
 * The project's absolute limits and what it uses of them. The rate limits beside them count this
 * test's own requests (their `remaining` moves with every call), so they are left out.
 */
async function absoluteLimits(who: Login): Promise<unknown> {
  const limits = (await call('GET', `/v1.0/${who.projectId}/limits`, who.token)).json?.limits as
    | { verb?: string }[]
    | undefined;
  return limits?.filter((l) => l.verb === 'ABSOLUTE');
}

describe('instance create with bad input', () => {
  let demo: Login;
  let before: { list: unknown; limits: unknown };
  beforeAll(async () => {
    demo = await login('demo', 'demo');
    before = {
      list: (await call('GET', `/v1.0/${demo.projectId}/instances`, demo.token)).json,
      limits: await absoluteLimits(demo),
    };
  });

  it.each(cases.map(([what, body, status, fault]) => ({ what, body, status, fault })))(
    '$what → $status $fault',
    async ({ body, status, fault }) => {
      const res = await call('POST', `/v1.0/${demo.projectId}/instances`, demo.token, body as object);
      expect(res.status).toBe(status);
      expect(res.json?.[fault]).toMatchObject({ code: status, message: expect.any(String) });
    },
  );

  it('malformed JSON → 400 badRequest', async () => {
    const res = await call(
      'POST',
      `/v1.0/${demo.projectId}/instances`,
      demo.token,
      '{"instance": {"name": "x",',
    );
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ badRequest: { code: 400, message: 'Malformed request body' } });
  });

  it('left nothing behind', async () => {
    expect((await call('GET', `/v1.0/${demo.projectId}/instances`, demo.token)).json).toEqual(before.list);
    expect(await absoluteLimits(demo)).toEqual(before.limits);
  });
});

describe('unknown and foreign instances', () => {
  it('an unknown instance is 404 for every route', async () => {
    const demo = await login('demo', 'demo');
    const id = '00000000-0000-0000-0000-000000000000';
    for (const [method, path, body] of [
      ['GET', '', undefined],
      ['DELETE', '', undefined],
      ['PUT', '', { instance: { name: 'x' } }],
      ['POST', '/action', { restart: {} }],
    ] as const) {
      const res = await call(method, `/v1.0/${demo.projectId}/instances/${id}${path}`, demo.token, body);
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ itemNotFound: { code: 404, message: `Resource ${id} cannot be found.` } });
    }
  });

  it('an action with no known key is 400', async () => {
    const demo = await login('demo', 'demo');
    const res = await call('POST', `/v1.0/${demo.projectId}/instances/x/action`, demo.token, {
      frobnicate: {},
    });
    expect(res.status).toBe(400);
  });
});

describe('quotas', () => {
  it('refuses a create over the project quota with 413 overLimit, and creates nothing', async () => {
    const admin = await login('admin', 'admin');
    const demo = await login('demo', 'demo');
    const set = (instances: number) =>
      call('PUT', `/v1.0/${admin.projectId}/mgmt/quotas/${demo.projectId}`, admin.token, {
        quotas: { instances },
      });
    expect((await set(0)).status).toBe(200);
    try {
      const limits = await call('GET', `/v1.0/${demo.projectId}/limits`, demo.token);
      expect((limits.json as { limits: object[] }).limits[0]).toMatchObject({
        verb: 'ABSOLUTE',
        max_instances: 0,
      });
      const res = await call('POST', `/v1.0/${demo.projectId}/instances`, demo.token, { instance: base });
      expect(res.status).toBe(413);
      expect(res.json).toEqual({
        overLimit: { code: 413, message: "Quota exceeded for resources: ['instances']." },
      });
      expect((await call('GET', `/v1.0/${demo.projectId}/instances`, demo.token)).json).toEqual({
        instances: [],
      });
      const shown = await call('GET', `/v1.0/${demo.projectId}/mgmt/quotas/${demo.projectId}`, demo.token);
      expect(shown.json?.quotas).toContainEqual({ resource: 'instances', in_use: 0, reserved: 0, limit: 0 });
    } finally {
      await set(10);
    }
  });

  it('shows a project its own quotas, and another project’s only to admins (Trove’s 403)', async () => {
    const [admin, demo] = await Promise.all([login('admin', 'admin'), login('demo', 'demo')]);
    const other = await call('GET', `/v1.0/${demo.projectId}/mgmt/quotas/${admin.projectId}`, demo.token);
    expect([other.status, other.json]).toEqual([
      403,
      { forbidden: { code: 403, message: `Operation not allowed for tenant ${demo.projectId}.` } },
    ]);
    const byAdmin = await call('GET', `/v1.0/${admin.projectId}/mgmt/quotas/${demo.projectId}`, admin.token);
    expect(byAdmin.status).toBe(200);
  });

  it('lets only admins change quotas', async () => {
    const demo = await login('demo', 'demo');
    const res = await call('PUT', `/v1.0/${demo.projectId}/mgmt/quotas/${demo.projectId}`, demo.token, {
      quotas: { instances: 100 },
    });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ unauthorized: { code: 401 } });
  });
});
