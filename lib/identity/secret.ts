import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

// The token-signing key comes from the environment when the operator provides one (the local
// cloud does), otherwise from an SSM SecureString parameter, so it is never baked into the
// deployed function configuration.
let cached: Promise<Uint8Array> | undefined;

export function tokenSigningKey(): Promise<Uint8Array> {
  cached ??= load().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function load(): Promise<Uint8Array> {
  const fromEnv = process.env.TROVELESS_TOKEN_SECRET;
  if (fromEnv) return check(fromEnv);
  const name = process.env.TROVELESS_TOKEN_SECRET_PARAMETER;
  if (!name) throw new Error('Neither TROVELESS_TOKEN_SECRET nor TROVELESS_TOKEN_SECRET_PARAMETER is set');
  const out = await new SSMClient({}).send(new GetParameterCommand({ Name: name, WithDecryption: true }));
  return check(out.Parameter?.Value ?? '');
}

function check(secret: string): Uint8Array {
  // HS256 wants at least 256 bits of key material.
  if (secret.length < 32) throw new Error('The token signing secret must be at least 32 characters');
  return new TextEncoder().encode(secret);
}
