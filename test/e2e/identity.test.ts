import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { api, call, cloud, login } from './helpers.ts';

const run = promisify(execFile);

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

describe('a real deployment’s identity', () => {
  /** Adds a user through `npm run identity:user`, against this cloud's identity table. */
  async function addUser(name: string, password: string, project: string, role: string) {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'local/identity-user.ts', name, password, project, role],
      { cwd: resolve(import.meta.dirname, '../..'), env: { ...process.env, ...cloud().env } },
    );
    expect(stdout).toMatch(new RegExp(`user ${name} \\(\\w+\\) has role ${role}`));
  }
  const auth = (name: string, password: string, project: string) =>
    fetch(`${api()}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name, password, domain: { id: 'default' } } },
          },
          scope: { project: { name: project, domain: { id: 'default' } } },
        },
      }),
    });

  it('keeps the local stage’s seeded users in the identity table, as hashes only', async () => {
    const docs = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: cloud().endpoints.dynamodb,
        region: 'us-east-1',
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      }),
    );
    const out = await docs.send(
      new QueryCommand({
        TableName: 'troveless-local-identity',
        IndexName: 'by-name',
        KeyConditionExpression: 'kind = :k',
        ExpressionAttributeValues: { ':k': 'user' },
      }),
    );
    const names = (out.Items ?? []).map((u) => u.name);
    expect(names).toEqual(expect.arrayContaining(['admin', 'demo']));
    const admin = (out.Items ?? []).find((u) => u.name === 'admin');
    const item = await docs.send(
      new GetCommand({ TableName: 'troveless-local-identity', Key: { pk: `user#${admin?.id}`, sk: 'user' } }),
    );
    expect(String(item.Item?.password_hash)).toMatch(/^scrypt\$/);
    expect(Object.keys(item.Item ?? {})).not.toContain('password');
  });

  it('locks a user out after repeated wrong passwords, answering 401 as for any wrong password', async () => {
    const name = `lockout-${randomBytes(3).toString('hex')}`;
    await addUser(name, 'right-password', 'demo', 'member');
    expect((await auth(name, 'right-password', 'demo')).status).toBe(201);
    // Keystone's lockout_failure_attempts, 6 by default.
    for (let n = 0; n < 6; n++) {
      const wrong = await auth(name, `wrong-${n}`, 'demo');
      expect(wrong.status).toBe(401);
    }
    const locked = await auth(name, 'right-password', 'demo');
    expect(locked.status).toBe(401);
    const wrong = await auth(name, 'wrong-again', 'demo');
    expect(await locked.json()).toEqual(await wrong.json());
    // Others are not affected.
    expect((await auth('demo', 'demo', 'demo')).status).toBe(201);
    // Setting a new password (an operator's unlock) lets the user in again.
    await addUser(name, 'new-password', 'demo', 'member');
    expect((await auth(name, 'new-password', 'demo')).status).toBe(201);
  });

  it('refuses a revoked token on every route, and lets only an admin revoke another user’s token', async () => {
    const admin = await login('admin', 'admin');
    const demo = await login('demo', 'demo');
    const other = await login('demo', 'demo');
    const path = `/v1.0/${demo.projectId}/instances`;
    expect((await call('GET', path, demo.token)).status).toBe(200);
    const revoke = (caller: string, subject: string) =>
      fetch(`${api()}/v3/auth/tokens`, {
        method: 'DELETE',
        headers: { 'x-auth-token': caller, 'x-subject-token': subject },
      });
    // A member cannot revoke an admin's token (Keystone: admin or the token's own user).
    expect((await revoke(demo.token, admin.token)).status).toBe(403);
    expect((await revoke(admin.token, demo.token)).status).toBe(204);
    // Each function trusts a "not revoked" answer for a few seconds (lib/identity/revocations.ts).
    const refused = await waitUntil(
      'the revoked token refused on a v1.0 route',
      async () => {
        const res = await call('GET', path, demo.token);
        return res.status === 401 ? res : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(refused.json).toMatchObject({ unauthorized: { code: 401 } });
    const validated = await fetch(`${api()}/v3/auth/tokens`, {
      headers: { 'x-auth-token': admin.token, 'x-subject-token': demo.token },
    });
    expect(validated.status).toBe(404);
    // The user's other token still works; a user may revoke their own.
    expect((await call('GET', path, other.token)).status).toBe(200);
    expect((await revoke(other.token, other.token)).status).toBe(204);
    expect((await revoke(admin.token, demo.token)).status).toBe(404);
  });

  it('answers what the openstack CLI asks about projects and users', async () => {
    const admin = await login('admin', 'admin');
    const demo = await login('demo', 'demo');
    const byName = await call('GET', '/v3/projects?name=demo', admin.token);
    expect(byName.status).toBe(200);
    expect(byName.json?.projects).toEqual([
      expect.objectContaining({ id: demo.projectId, name: 'demo', domain_id: 'default', enabled: true }),
    ]);
    const all = (await call('GET', '/v3/projects', admin.token)).json?.projects as Array<{ name: string }>;
    expect(all.map((p) => p.name)).toEqual(expect.arrayContaining(['admin', 'demo']));
    expect((await call('GET', '/v3/projects?name=nope', admin.token)).json?.projects).toEqual([]);
    expect((await call('GET', '/v3/projects', demo.token)).status).toBe(403);

    const project = await call('GET', `/v3/projects/${demo.projectId}`, demo.token);
    expect(project.json?.project).toMatchObject({ id: demo.projectId, name: 'demo' });
    expect((await call('GET', `/v3/projects/${admin.projectId}`, demo.token)).status).toBe(403);
    const missing = await call('GET', '/v3/projects/demo', admin.token);
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: { code: 404 } });

    const userId = (demo.body.token as { user: { id: string } }).user.id;
    const user = await call('GET', `/v3/users/${userId}`, demo.token);
    expect(user.json?.user).toMatchObject({ id: userId, name: 'demo', domain_id: 'default' });
    expect(JSON.stringify(user.json)).not.toMatch(/scrypt|password_hash/);
    expect((await call('GET', `/v3/users/${userId}`)).status).toBe(401);
  });
});
