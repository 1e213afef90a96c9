import { createHash } from 'node:crypto';
import { newGuestKey, unwrapKey, wrapKey } from '../guest/keys.ts';
import { decryptWith, encryptFor } from '../guest/sealed.ts';

// Trove encrypts module contents at rest with `module_aes_cbc_key`, one static key in its config.
// Here each module gets its own data key, kept wrapped by the key-encryption key that already
// wraps guest and backup keys (KMS deployed, the state dir's guest-kek locally): a dump of the
// table reveals no contents, and no static key sits in any function's configuration.

export async function sealContents(base64: string) {
  const key = newGuestKey();
  return {
    md5: createHash('md5').update(base64).digest('hex'),
    sealed_contents: encryptFor(key, base64),
    wrapped_key: await wrapKey(key),
  };
}

export async function openContents(item: { sealed_contents: string; wrapped_key: string }): Promise<string> {
  return decryptWith(await unwrapKey(item.wrapped_key), item.sealed_contents) as string;
}
