import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { tokenSigningKey } from '../identity/secret.ts';

// Each instance gets its own random signing key (Trove's per-instance RPC key). It is stored
// only wrapped (AES-256-GCM) under a key-encryption key derived from the deployment secret, and
// handed to the guest in the clear only at boot.
const INFO = 'troveless guest key wrap v1';

async function kek(): Promise<Buffer> {
  const root = await tokenSigningKey();
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), INFO, 32));
}

export function newGuestKey(): Buffer {
  return randomBytes(32);
}

export async function wrapKey(key: Buffer): Promise<string> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await kek(), iv);
  const sealed = Buffer.concat([cipher.update(key), cipher.final()]);
  return [
    'v1',
    iv.toString('base64url'),
    sealed.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

export async function unwrapKey(wrapped: string): Promise<Buffer> {
  const [version, iv, sealed, tag] = wrapped.split('.');
  if (version !== 'v1' || !iv || !sealed || !tag) throw new Error('malformed wrapped key');
  const decipher = createDecipheriv('aes-256-gcm', await kek(), Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]);
}
