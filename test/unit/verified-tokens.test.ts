import { afterEach, describe, expect, it } from 'vitest';
import { clearVerifiedTokens, issueToken, verifyToken } from '../../lib/identity/tokens.ts';
import { VerifiedTokens } from '../../lib/identity/verified-tokens.ts';

const claims = {
  user_id: 'u1',
  user_name: 'demo',
  domain_id: 'default',
  project_id: 'p1',
  project_name: 'demo',
  roles: ['member'],
};
const SECRET = 'unit-test-secret-unit-test-secret-0123';

describe('the verified-token cache', () => {
  const key = {};
  const t0 = 1_800_000_000_000;

  it('answers only while the token is unexpired, as jose counts it', () => {
    const cache = new VerifiedTokens<{ exp: number }>(10);
    cache.set('a', key, { exp: t0 / 1000 + 60 });
    expect(cache.get('a', key, t0 + 59_999)).toEqual({ exp: t0 / 1000 + 60 });
    // exp <= now (whole seconds) is expired, and the entry is gone for good.
    expect(cache.get('a', key, t0 + 60_000)).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.get('a', key, t0)).toBeUndefined();
  });

  it('misses once the signing key is another one', () => {
    const cache = new VerifiedTokens<{ exp: number }>(10);
    cache.set('a', key, { exp: t0 / 1000 + 60 });
    expect(cache.get('a', {}, t0)).toBeUndefined();
    expect(cache.get('a', key, t0)).toBeUndefined();
  });

  it('stays bounded, the least recently used going first', () => {
    const cache = new VerifiedTokens<{ exp: number }>(3);
    for (const t of ['a', 'b', 'c']) cache.set(t, key, { exp: t0 / 1000 + 60 });
    expect(cache.get('a', key, t0)).toBeDefined();
    cache.set('d', key, { exp: t0 / 1000 + 60 });
    expect(cache.size).toBe(3);
    expect(cache.get('b', key, t0)).toBeUndefined();
    for (const t of ['a', 'c', 'd']) expect(cache.get(t, key, t0), t).toBeDefined();
  });
});

describe('verifyToken with the cache', () => {
  afterEach(() => {
    process.env.TROVELESS_TOKEN_SECRET = SECRET;
    clearVerifiedTokens();
  });

  it('refuses a token it verified once it has expired', async () => {
    process.env.TROVELESS_TOKEN_SECRET = SECRET;
    const issued = await issueToken(claims, 60);
    const now = issued.issuedAt.getTime();
    expect(await verifyToken(issued.token, now)).toMatchObject({ ok: true, jti: issued.jti });
    expect(await verifyToken(issued.token, now + 30_000)).toMatchObject({ ok: true });
    expect(await verifyToken(issued.token, now + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a token it verified once the signing secret is rotated', async () => {
    process.env.TROVELESS_TOKEN_SECRET = SECRET;
    const issued = await issueToken(claims, 60);
    expect(await verifyToken(issued.token)).toMatchObject({ ok: true });
    process.env.TROVELESS_TOKEN_SECRET = `${SECRET}-rotated`;
    expect(await verifyToken(issued.token)).toEqual({ ok: false, reason: 'invalid' });
    // And back: the old secret's tokens verify again (nothing was cached while they failed).
    process.env.TROVELESS_TOKEN_SECRET = SECRET;
    expect(await verifyToken(issued.token)).toMatchObject({ ok: true });
  });

  it('shares claims no request can change', async () => {
    process.env.TROVELESS_TOKEN_SECRET = SECRET;
    const issued = await issueToken(claims, 60);
    const first = await verifyToken(issued.token);
    if (!first.ok) throw new Error('not verified');
    expect(() => first.claims.roles.push('admin')).toThrow();
    expect(await verifyToken(issued.token)).toMatchObject({ ok: true, claims: { roles: ['member'] } });
  });
});
