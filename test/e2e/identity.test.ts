import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { api, call, cloud, login } from './helpers.ts';

describe('Keystone v3 identity', () => {
  it('serves the version document the openstack CLI discovers', async () => {
    const res = await call('GET', '/v3');
    expect(res.status).toBe(200);
    expect(res.json?.version).toMatchObject({ id: 'v3.14', status: 'stable' });
  });

  it('issues a project-scoped token with the database endpoint in its catalog', async () => {
    const admin = await login('admin', 'admin');
    expect(admin.token.length).toBeGreaterThan(20);
    const token = admin.body.token as Record<string, unknown>;
    expect(token).toMatchObject({
      methods: ['password'],
      user: { name: 'admin', domain: { id: 'default' } },
      project: { name: 'admin', id: admin.projectId },
      roles: [{ name: 'admin' }],
    });
    expect(Date.parse(String(token.expires_at))).toBeGreaterThan(Date.parse(String(token.issued_at)));
    const catalog = token.catalog as Array<{ type: string; endpoints: Array<Record<string, string>> }>;
    const database = catalog.find((s) => s.type === 'database');
    expect(database?.endpoints).toContainEqual(
      expect.objectContaining({
        interface: 'public',
        region_id: 'RegionOne',
        url: `${api()}/v1.0/${admin.projectId}`,
      }),
    );
  });

  it('refuses a wrong password and an unknown user with 401', async () => {
    await expect(login('admin', 'wrong')).rejects.toThrow(/401/);
    await expect(login('nobody', 'admin')).rejects.toThrow(/401/);
    await expect(login('demo', 'demo', 'admin')).rejects.toThrow(/401/);
  });

  it('validates a token for another holder of a valid token', async () => {
    const admin = await login('admin', 'admin');
    const demo = await login('demo', 'demo');
    const res = await fetch(`${api()}/v3/auth/tokens`, {
      headers: { 'x-auth-token': admin.token, 'x-subject-token': demo.token },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token: { project: { id: string } } }).token.project.id).toBe(
      demo.projectId,
    );
    const forged = await fetch(`${api()}/v3/auth/tokens`, {
      headers: { 'x-auth-token': admin.token, 'x-subject-token': `${demo.token}x` },
    });
    expect(forged.status).toBe(404);
  });
});

describe('tokens on /v1.0/{project_id} routes', () => {
  const mint = async (secret: string, claims: Record<string, unknown>, exp: number) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('troveless-identity')
      .setIssuedAt(exp - 3600)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(secret));

  it('lets a project list its own instances', async () => {
    const demo = await login('demo', 'demo');
    const res = await call('GET', `/v1.0/${demo.projectId}/instances`, demo.token);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ instances: [] });
  });

  it('answers 401 with Trove’s fault for a missing, forged or expired token', async () => {
    const demo = await login('demo', 'demo');
    const path = `/v1.0/${demo.projectId}/instances`;
    const claims = {
      user_id: 'u',
      user_name: 'demo',
      domain_id: 'default',
      project_id: demo.projectId,
      project_name: 'demo',
      roles: ['admin'],
    };
    const now = Math.floor(Date.now() / 1000);
    const forged = await mint('not-the-secret-not-the-secret-not-the-secret', claims, now + 3600);
    const expired = await mint(cloud().env.TROVELESS_TOKEN_SECRET ?? '', claims, now - 60);
    for (const token of [undefined, 'garbage', forged, expired]) {
      const res = await call('GET', path, token);
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ unauthorized: { code: 401 } });
    }
  });

  it('forbids a member from another project (403) but lets an admin in', async () => {
    const admin = await login('admin', 'admin');
    const demo = await login('demo', 'demo');
    const denied = await call('GET', `/v1.0/${admin.projectId}/instances`, demo.token);
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ forbidden: { code: 403 } });
    const allowed = await call('GET', `/v1.0/${demo.projectId}/instances`, admin.token);
    expect(allowed.status).toBe(200);
    expect(allowed.json).toEqual({ instances: [] });
  });
});
