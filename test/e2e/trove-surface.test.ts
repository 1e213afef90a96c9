import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, call, type Login, login } from './helpers.ts';

// Small answers where Troveless once differed from a real Trove 18 API on the same request; each
// test pins Trove's status, fault name and message (TROVE_API.md, trove-samples, Trove's code).

let admin: Login;
let demo: Login;
const as = (who: Login, method: string, path: string, body?: object) =>
  call(method, `/v1.0/${who.projectId}${path}`, who.token, body);

beforeAll(async () => {
  [admin, demo] = await Promise.all([login('admin', 'admin'), login('demo', 'demo')]);
});

describe('the version root', () => {
  const versions = () => ({
    versions: [
      {
        id: 'v1.0',
        status: 'CURRENT',
        updated: '2012-08-01T00:00:00Z',
        links: [{ rel: 'self', href: `${api()}/v1.0/` }],
      },
    ],
  });

  it('OPTIONS / is the version document, as Trove routes every method of / to it', async () => {
    const res = await call('OPTIONS', '/');
    expect([res.status, res.json]).toEqual([200, versions()]);
  });

  it('OPTIONS on a route is Trove’s 404: its routes are for their own methods', async () => {
    const res = await as(demo, 'OPTIONS', '/instances');
    expect([res.status, res.json]).toEqual([
      404,
      { itemNotFound: { code: 404, message: 'The resource could not be found.' } },
    ]);
  });

  it('GET /v1.0/ wants a token (401), then a project in the path (Trove’s 403)', async () => {
    for (const path of ['/v1.0/', '/v1.0']) {
      expect((await call('GET', path)).status).toBe(401);
      const res = await call('GET', path, demo.token);
      expect([path, res.status, res.json]).toEqual([
        path,
        403,
        {
          forbidden: {
            code: 403,
            message: `User with tenant id ${demo.projectId} cannot access this resource.`,
          },
        },
      ]);
    }
    // Another project's unknown path is refused like its known ones.
    const other = await call('GET', `/v1.0/${admin.projectId}/nosuchresource`, demo.token);
    expect(other.status).toBe(403);
  });
});

describe('backups', () => {
  it('GET /backups?datastore= an unknown datastore is Trove’s 404', async () => {
    const res = await as(demo, 'GET', '/backups?datastore=nosuchdb');
    expect([res.status, res.json]).toEqual([
      404,
      { itemNotFound: { code: 404, message: "Datastore 'nosuchdb' cannot be found." } },
    ]);
    expect((await as(demo, 'GET', '/backups?datastore=mysql')).status).toBe(200);
  });

  it('POST /backups with an instance that is not a UUID is Trove’s schema 400', async () => {
    const res = await as(demo, 'POST', '/backups', { backup: { name: 'b', instance: 'not-a-uuid' } });
    expect([res.status, res.json]).toEqual([
      400,
      {
        badRequest: {
          code: 400,
          message:
            "Validation error: backup['instance'] 'not-a-uuid' does not match '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$'",
        },
      },
    ]);
    // A well-formed id of no instance is still the instance's 404.
    const id = randomUUID();
    const unknown = await as(demo, 'POST', '/backups', { backup: { name: 'b', instance: id } });
    expect([unknown.status, unknown.json]).toEqual([
      404,
      { itemNotFound: { code: 404, message: `Resource ${id} cannot be found.` } },
    ]);
  });
});

describe('configuration groups and list pages', () => {
  const made: string[] = [];
  afterAll(async () => {
    for (const id of made) await as(demo, 'DELETE', `/configurations/${id}`);
  });

  it('shows a group made without a description with description null', async () => {
    const res = await as(demo, 'POST', '/configurations', {
      configuration: { name: 'no-description', values: {}, datastore: { type: 'mysql' } },
    });
    expect(res.status).toBe(200);
    const group = res.json?.configuration as { id: string; description: unknown };
    made.push(group.id);
    expect(group.description).toBeNull();
    const shown = await as(demo, 'GET', `/configurations/${group.id}`);
    expect(shown.json?.configuration).toHaveProperty('description', null);
    const listed = await as(demo, 'GET', '/configurations');
    const items = (listed.json?.configurations ?? []) as { id: string }[];
    expect(items.find((g) => g.id === group.id)).toHaveProperty('description', null);
  });

  it('a page that ends on the project’s last item carries no next link', async () => {
    const res = await as(demo, 'POST', '/configurations', {
      configuration: { name: 'second', values: {}, datastore: { type: 'mysql' } },
    });
    made.push(String((res.json?.configuration as { id?: string } | undefined)?.id));
    const all = ((await as(demo, 'GET', '/configurations')).json?.configurations ?? []) as { id: string }[];
    const n = all.length;
    expect(n).toBeGreaterThanOrEqual(2);
    const exact = await as(demo, 'GET', `/configurations?limit=${n}`);
    expect(exact.json).not.toHaveProperty('links');
    const short = await as(demo, 'GET', `/configurations?limit=${n - 1}`);
    expect(short.json?.links).toEqual([
      {
        rel: 'next',
        href: `${api()}/v1.0/${demo.projectId}/configurations?limit=${n - 1}&marker=${all[n - 2]?.id}`,
      },
    ]);
    const last = await as(demo, 'GET', `/configurations?limit=${n - 1}&marker=${all[n - 2]?.id}`);
    expect(last.json).toEqual({ configurations: [expect.objectContaining({ id: all[n - 1]?.id })] });
  });
});
