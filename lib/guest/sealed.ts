import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Encrypts a payload for one guest (e.g. the users and passwords of prepare) with its own key. */
export function encryptFor(key: Buffer, payload: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([cipher.update(JSON.stringify(payload)), cipher.final()]);
  return [
    iv.toString('base64url'),
    sealed.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

export function decryptWith(key: Buffer, text: string): unknown {
  const [iv, sealed, tag] = text.split('.');
  if (!iv || !sealed || !tag) throw new Error('malformed sealed payload');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return JSON.parse(
    Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString(),
  );
}
