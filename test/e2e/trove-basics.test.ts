import { describe, expect, it } from 'vitest';
import { api, call, login } from './helpers.ts';

describe('Trove basics', () => {
  it('GET / returns the version document with a self link to this endpoint', async () => {
    const res = await call('GET', '/');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      versions: [
        {
          id: 'v1.0',
          status: 'CURRENT',
          updated: '2012-08-01T00:00:00Z',
          links: [{ rel: 'self', href: `${api()}/v1.0/` }],
        },
      ],
    });
  });

  it('an unknown route gets Trove’s 404 body, whatever the method, once the token is checked', async () => {
    const demo = await login('demo', 'demo');
    const notFound = { itemNotFound: { code: 404, message: 'The resource could not be found.' } };
    for (const method of ['GET', 'POST', 'DELETE', 'OPTIONS']) {
      const res = await call(method, `/v1.0/${demo.projectId}/nosuchresource`, demo.token);
      expect([method, res.status, res.json]).toEqual([method, 404, notFound]);
      // keystonemiddleware runs before Trove's router: no token, no answer about routes.
      const anonymous = await call(method, `/v1.0/${demo.projectId}/nosuchresource`);
      expect([method, anonymous.status]).toEqual([method, 401]);
      expect((await call(method, '/nosuchresource')).status).toBe(404);
    }
  });

  it('malformed JSON is a 400 badRequest, not middy’s 415', async () => {
    const res = await call('POST', '/v3/auth/tokens', undefined, '{"auth": {');
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ badRequest: { code: 400, message: 'Malformed request body' } });
  });

  it('a body with a `__proto__` key is refused as malformed, not parsed into a request', async () => {
    const res = await call('POST', '/v3/auth/tokens', undefined, '{"auth": {"__proto__": {"identity": {}}}}');
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ badRequest: { code: 400, message: 'Malformed request body' } });
  });

  it('a bad limit is a 400, where Trove itself answers 500', async () => {
    const demo = await login('demo', 'demo');
    for (const limit of ['abc', '0', '-1']) {
      const res = await call('GET', `/v1.0/${demo.projectId}/instances?limit=${limit}`, demo.token);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ badRequest: { code: 400 } });
    }
  });
});
