import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../lib/identity/passwords.ts';
import { issueToken, verifyToken } from '../../lib/identity/tokens.ts';

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
    expect(await verifyToken(issued.token)).toEqual({ ok: true, claims });
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
