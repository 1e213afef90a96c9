import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { isRevoked } from './revocations.ts';
import { tokenSigningKey } from './secret.ts';

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

/** Signature, issuer and expiry only: a pure check, no revocation lookup (see checkToken). */
export async function verifyToken(token: string): Promise<TokenCheck> {
  try {
    const { payload } = await jwtVerify(token, await tokenSigningKey(), {
      issuer: ISSUER,
      algorithms: ['HS256'],
    });
    const claims = TokenClaims.safeParse(payload);
    if (!claims.success || typeof payload.jti !== 'string' || typeof payload.exp !== 'number')
      return { ok: false, reason: 'invalid' };
    return { ok: true, claims: claims.data, jti: payload.jti, exp: payload.exp };
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

export function isAdmin(claims: TokenClaims): boolean {
  return claims.roles.includes('admin');
}
