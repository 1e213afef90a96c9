import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { tokenSigningKey } from './secret.ts';

// A token is a signed, expiring JWT carrying the scope Keystone would return on validation.
// Clients treat it as opaque (X-Subject-Token / X-Auth-Token); the API verifies it locally,
// so no identity round trip is needed per request.
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
}

export async function issueToken(
  claims: TokenClaims,
  ttlSeconds: number,
  now = new Date(),
): Promise<IssuedToken> {
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + ttlSeconds;
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(randomUUID())
    .sign(await tokenSigningKey());
  return { token, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000) };
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: 'expired' | 'invalid' };

export async function verifyToken(token: string): Promise<TokenCheck> {
  try {
    const { payload } = await jwtVerify(token, await tokenSigningKey(), {
      issuer: ISSUER,
      algorithms: ['HS256'],
    });
    const claims = TokenClaims.safeParse(payload);
    return claims.success ? { ok: true, claims: claims.data } : { ok: false, reason: 'invalid' };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
    if (err instanceof joseErrors.JOSEError) return { ok: false, reason: 'invalid' };
    throw err;
  }
}

export function isAdmin(claims: TokenClaims): boolean {
  return claims.roles.includes('admin');
}
