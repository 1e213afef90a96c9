import type { ServiceInputTypes } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { documents } from '../../lib/dynamo.ts';
import { lockState } from '../../lib/identity/lockout.ts';
import { hashPassword, verifyPassword } from '../../lib/identity/passwords.ts';
import { clearRevocationCache, isRevoked, revokeToken } from '../../lib/identity/revocations.ts';
import { checkToken, issueToken, verifyToken } from '../../lib/identity/tokens.ts';

describe('password hashes', () => {
  it('verify the right password only, and never store it in the clear', async () => {
    const stored = await hashPassword('s3cret!');
    expect(stored).not.toContain('s3cret');
    expect(stored.startsWith('scrypt$')).toBe(true);
    expect(await verifyPassword('s3cret!', stored)).toBe(true);
    expect(await verifyPassword('s3cret', stored)).toBe(false);
    expect(await verifyPassword('s3cret!', 'garbage')).toBe(false);
  });

  it('salt every hash', async () => {
    expect(await hashPassword('x')).not.toBe(await hashPassword('x'));
  });
});

describe('tokens', () => {
  const claims = {
    user_id: 'u1',
    user_name: 'demo',
    domain_id: 'default',
    project_id: 'p1',
    project_name: 'demo',
    roles: ['member'],
  };
  beforeAll(() => {
    process.env.TROVELESS_TOKEN_SECRET = 'unit-test-secret-unit-test-secret-0123';
  });

  it('round-trip their claims', async () => {
    const issued = await issueToken(claims, 60);
    expect(issued.expiresAt.getTime() - issued.issuedAt.getTime()).toBe(60_000);
    expect(await verifyToken(issued.token)).toEqual({
      ok: true,
      claims,
      jti: issued.jti,
      exp: issued.expiresAt.getTime() / 1000,
    });
  });

  it('are refused once expired or when tampered with', async () => {
    const old = await issueToken(claims, 60, new Date(Date.now() - 120_000));
    expect(await verifyToken(old.token)).toEqual({ ok: false, reason: 'expired' });
    const fresh = await issueToken(claims, 60);
    const [h, p, s] = fresh.token.split('.');
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString());
    payload.roles = ['admin'];
    const tampered = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    expect(await verifyToken(tampered)).toEqual({ ok: false, reason: 'invalid' });
    expect(await verifyToken('not.a.token')).toEqual({ ok: false, reason: 'invalid' });
  });
});

describe('lockout (Keystone lockout_failure_attempts / lockout_duration)', () => {
  const settings = { failureAttempts: 3, durationSeconds: 600 };
  const now = 1_800_000_000;

  it('stays open below the number of attempts', () => {
    expect(lockState({}, now, settings)).toBe('open');
    expect(lockState({ failed_auth_count: 2, failed_auth_at: now }, now, settings)).toBe('open');
  });

  it('locks at that number, for the duration after the last failure', () => {
    expect(lockState({ failed_auth_count: 3, failed_auth_at: now }, now, settings)).toBe('locked');
    expect(lockState({ failed_auth_count: 7, failed_auth_at: now - 599 }, now, settings)).toBe('locked');
  });

  it('lapses once the duration has passed, so the count starts again', () => {
    expect(lockState({ failed_auth_count: 3, failed_auth_at: now - 600 }, now, settings)).toBe('lapsed');
    expect(lockState({ failed_auth_count: 3 }, now, settings)).toBe('lapsed');
  });
});

describe('token revocation', () => {
  const claims = {
    user_id: 'u1',
    user_name: 'demo',
    domain_id: 'default',
    project_id: 'p1',
    project_name: 'demo',
    roles: ['member'],
  };
  /** DynamoDB as the revocation records say: Get answers whether the jti was recorded. */
  function fakeTable() {
    const revoked = new Set<string>();
    const gets: string[] = [];
    const send = vi.spyOn(documents, 'send').mockImplementation((async (command: {
      constructor: { name: string };
      input: ServiceInputTypes;
    }) => {
      const input = command.input as { Key?: { pk: string }; Item?: { pk: string } };
      if (command.constructor.name === 'PutCommand' && input.Item) revoked.add(input.Item.pk);
      if (command.constructor.name === 'GetCommand' && input.Key) {
        gets.push(input.Key.pk);
        return { Item: revoked.has(input.Key.pk) ? { pk: input.Key.pk } : undefined };
      }
      return {};
    }) as never);
    return { revoked, gets, send };
  }
  beforeAll(() => {
    process.env.TROVELESS_TOKEN_SECRET = 'unit-test-secret-unit-test-secret-0123';
  });
  afterEach(() => {
    vi.restoreAllMocks();
    clearRevocationCache();
  });

  it('refuses a revoked token, and only that one', async () => {
    const table = fakeTable();
    const a = await issueToken(claims, 60);
    const b = await issueToken(claims, 60);
    expect(await checkToken(a.token)).toMatchObject({ ok: true, jti: a.jti });
    await revokeToken(a.jti, Math.floor(a.expiresAt.getTime() / 1000));
    expect(table.revoked).toEqual(new Set([`revoked#${a.jti}`]));
    expect(await checkToken(a.token)).toEqual({ ok: false, reason: 'revoked' });
    expect(await checkToken(b.token)).toMatchObject({ ok: true, jti: b.jti });
  });

  it('asks the table at most once per cache period for a token that is not revoked', async () => {
    const table = fakeTable();
    const t0 = 1_800_000_000_000;
    expect(await isRevoked('j1', t0 / 1000 + 3600, t0)).toBe(false);
    expect(await isRevoked('j1', t0 / 1000 + 3600, t0 + 4_000)).toBe(false);
    expect(table.gets).toEqual(['revoked#j1']);
    // Revoked elsewhere (another function): seen once the 5 s "not revoked" answer has aged.
    table.revoked.add('revoked#j1');
    expect(await isRevoked('j1', t0 / 1000 + 3600, t0 + 5_001)).toBe(true);
    // A revocation is permanent: that answer is kept, no further lookups.
    expect(await isRevoked('j1', t0 / 1000 + 3600, t0 + 3_000_000)).toBe(true);
    expect(table.gets).toEqual(['revoked#j1', 'revoked#j1']);
  });

  it('keeps the cache bounded', async () => {
    const table = fakeTable();
    const t0 = 1_800_000_000_000;
    for (let n = 0; n <= 10_000; n++) await isRevoked(`j${n}`, t0 / 1000 + 60, t0);
    expect(table.gets).toHaveLength(10_001);
    // The oldest entry was evicted, so it is asked again; the newest is still cached.
    await isRevoked('j0', t0 / 1000 + 60, t0);
    await isRevoked('j10000', t0 / 1000 + 60, t0);
    expect(table.gets).toHaveLength(10_002);
  });
});
