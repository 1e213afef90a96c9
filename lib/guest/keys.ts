import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';

// Each instance gets its own random signing key (Trove's per-instance RPC key), and each backup
// its own data key. They are stored only wrapped, under a key-encryption key of their own —
// never derived from the token-signing secret, so a function that unwraps guest keys (the
// conductor parses guest input) cannot mint tokens, and a token-signing function cannot read
// guest keys. The KEK is either
//   - a KMS key (TROVELESS_GUEST_KEY_ID, an alias or ARN): the deployed stack's, granted only to
//     the functions that wrap or unwrap (serverless/guest-keys.yml); or
//   - a secret in TROVELESS_GUEST_KEK (the local cloud generates one into its state dir).
// The wrapped form names its scheme, so unwrapping needs no configuration beyond the KEK.

const CONTEXT = { purpose: 'troveless-guest-key' };
let kms: KMSClient | undefined;

function localKek(secret: string): Buffer {
  if (secret.length < 32) throw new Error('TROVELESS_GUEST_KEK must be at least 32 characters');
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'troveless guest kek v2', 32));
}

export function newGuestKey(): Buffer {
  return randomBytes(32);
}

export async function wrapKey(key: Buffer): Promise<string> {
  const secret = process.env.TROVELESS_GUEST_KEK;
  if (secret) {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', localKek(secret), iv);
    const sealed = Buffer.concat([cipher.update(key), cipher.final()]);
    return ['k2', iv, sealed, cipher.getAuthTag()]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }
  const keyId = process.env.TROVELESS_GUEST_KEY_ID;
  if (!keyId) throw new Error('Neither TROVELESS_GUEST_KEK nor TROVELESS_GUEST_KEY_ID is set');
  kms ??= new KMSClient({});
  const out = await kms.send(
    new EncryptCommand({ KeyId: keyId, Plaintext: key, EncryptionContext: CONTEXT }),
  );
  return `kms.${Buffer.from(out.CiphertextBlob ?? new Uint8Array()).toString('base64url')}`;
}

export async function unwrapKey(wrapped: string): Promise<Buffer> {
  const [scheme, ...parts] = wrapped.split('.');
  if (scheme === 'kms' && parts[0]) {
    kms ??= new KMSClient({});
    const out = await kms.send(
      new DecryptCommand({ CiphertextBlob: Buffer.from(parts[0], 'base64url'), EncryptionContext: CONTEXT }),
    );
    return Buffer.from(out.Plaintext ?? new Uint8Array());
  }
  if (scheme === 'k2' && parts.length === 3) {
    const secret = process.env.TROVELESS_GUEST_KEK;
    if (!secret) throw new Error('TROVELESS_GUEST_KEK is not set: this key was wrapped with it');
    const [iv, sealed, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    const decipher = createDecipheriv('aes-256-gcm', localKek(secret), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed), decipher.final()]);
  }
  if (scheme === 'v1')
    throw new Error(
      'key wrapped with the token secret by an older Troveless: recreate the instance (locally: npm start -- --wipe)',
    );
  throw new Error('malformed wrapped key');
}
