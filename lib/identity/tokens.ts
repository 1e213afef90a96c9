import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { isRevoked } from './revocations.ts';
import { tokenSigningKey } from './secret.ts';
import { VerifiedTokens } from './verified-tokens.ts';

// A token is a signed, expiring JWT carrying the scope Keystone would return on validation.
// Clients treat it as opaque (X-Subject-Token / X-Auth-Token); the API verifies it locally and
// asks only whether its id (jti) was revoked (lib/identity/revocations.ts, cached).
const ISSUER = 'troveless-identity';

export const TokenClaims = z.object({
  user_id: z.string(),
  user_name: z.string(),
  domain_id: z.string(),
  project_id: z.string(),
  project_name: z.string(),
  roles: z.array(z.string()),
});
export type TokenClaims = z.infer<typeof TokenClaims>;

export interface IssuedToken {
  token: string;
  issuedAt: Date;
  expiresAt: Date;
  jti: string;
}

export async function issueToken(
  claims: TokenClaims,
  ttlSeconds: number,
  now = new Date(),
): Promise<IssuedToken> {
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + ttlSeconds;
  const jti = randomUUID();
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(await tokenSigningKey());
  return { token, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000), jti };
}

/** A verified token: its scope, its id and its expiry (Unix seconds). */
export interface VerifiedToken {
  ok: true;
  claims: TokenClaims;
  jti: string;
  exp: number;
}
export type TokenCheck = VerifiedToken | { ok: false; reason: 'expired' | 'invalid' | 'revoked' };

/** Verified tokens a warm function keeps (verified-tokens.ts: expiry and key checked on each use). */
const verified = new VerifiedTokens<VerifiedToken>(10_000);

/** Signature, issuer and expiry only: a pure check, no revocation lookup (see checkToken). */
export async function verifyToken(token: string, now = Date.now()): Promise<TokenCheck> {
  const key = await tokenSigningKey();
  const cached = verified.get(token, key, now);
  if (cached) return cached;
  try {
    const { payload } = await jwtVerify(token, key, {
      issuer: ISSUER,
      algorithms: ['HS256'],
      currentDate: new Date(now),
    });
    const claims = TokenClaims.safeParse(payload);
    if (!claims.success || typeof payload.jti !== 'string' || typeof payload.exp !== 'number')
      return { ok: false, reason: 'invalid' };
    // Frozen: every request that presents this token shares the same claims.
    Object.freeze(claims.data.roles);
    const checked: VerifiedToken = Object.freeze({
      ok: true,
      claims: Object.freeze(claims.data),
      jti: payload.jti,
      exp: payload.exp,
    });
    verified.set(token, key, checked);
    return checked;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
    if (err instanceof joseErrors.JOSEError) return { ok: false, reason: 'invalid' };
    throw err;
  }
}

/** What every route that accepts a token asks: valid, unexpired and not revoked. */
export async function checkToken(token: string): Promise<TokenCheck> {
  const checked = await verifyToken(token);
  if (!checked.ok) return checked;
  return (await isRevoked(checked.jti, checked.exp)) ? { ok: false, reason: 'revoked' } : checked;
}

/** For tests: forget every verified token. */
export function clearVerifiedTokens(): void {
  verified.clear();
}

export function isAdmin(claims: TokenClaims): boolean {
  return claims.roles.includes('admin');
}
