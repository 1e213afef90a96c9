import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// The local cloud's guest key-encryption key (AWS uses a KMS key): a secret of its own, never
// derived from the token secret, created once into the state dir (0600) like the token secret.
// A state dir from before it existed gets one at the next start; instances created there before
// hold keys wrapped the old way and cannot be unwrapped: `npm start -- --wipe` (README).
export async function guestKeySecret(stateDir: string): Promise<string> {
  if (process.env.TROVELESS_GUEST_KEK) return process.env.TROVELESS_GUEST_KEK;
  const file = join(stateDir, 'guest-kek');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, secret, { mode: 0o600, flag: 'wx' });
  return secret;
}
