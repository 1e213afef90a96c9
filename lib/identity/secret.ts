import { getParameter } from '@aws-lambda-powertools/parameters/ssm';

// The token-signing key comes from the environment when the operator provides one (the local
// cloud does), otherwise from an SSM SecureString parameter, so it is never baked into the
// deployed function configuration. Powertools Parameters caches it per container; a rotated
// secret is picked up within MAX_AGE_SECONDS.
const MAX_AGE_SECONDS = 300;

export async function tokenSigningKey(): Promise<Uint8Array> {
  const fromEnv = process.env.TROVELESS_TOKEN_SECRET;
  if (fromEnv) return check(fromEnv);
  const name = process.env.TROVELESS_TOKEN_SECRET_PARAMETER;
  if (!name) throw new Error('Neither TROVELESS_TOKEN_SECRET nor TROVELESS_TOKEN_SECRET_PARAMETER is set');
  return check((await getParameter(name, { decrypt: true, maxAge: MAX_AGE_SECONDS })) ?? '');
}

/** The last secret's bytes: the same key object while the secret is the same (tokens.ts keys its cache on it). */
let last: { secret: string; key: Uint8Array } | undefined;

function check(secret: string): Uint8Array {
  // HS256 wants at least 256 bits of key material.
  if (secret.length < 32) throw new Error('The token signing secret must be at least 32 characters');
  if (last?.secret !== secret) last = { secret, key: new TextEncoder().encode(secret) };
  return last.key;
}
