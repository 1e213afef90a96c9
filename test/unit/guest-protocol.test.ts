import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { unwrapKey, wrapKey } from '../../lib/guest/keys.ts';
import { openEnvelope, seal, verifySignature } from '../../lib/guest/protocol.ts';
import { decryptWith, encryptFor } from '../../lib/guest/sealed.ts';

describe('signed guest messages', () => {
  it('verify with the instance key only', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (payload) => {
        const key = randomBytes(32);
        const envelope = openEnvelope(seal(key, 'i-1', { payload }));
        expect(envelope).toBeDefined();
        if (!envelope) return;
        expect(verifySignature(key, envelope)).toBe(true);
        expect(verifySignature(randomBytes(32), envelope)).toBe(false);
        expect(verifySignature(key, { ...envelope, body: `${envelope.body} ` })).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('reject what is not an envelope', () => {
    for (const text of ['', 'null', '{}', '{"instance_id":"x"}', 'not json', '[1]']) {
      expect(openEnvelope(text)).toBeUndefined();
    }
  });
});

describe('keys and sealed payloads', () => {
  beforeAll(() => {
    process.env.TROVELESS_GUEST_KEK = 'unit-test-guest-kek-unit-test-guest-kek';
  });

  it('a wrapped key unwraps to itself and is not the key in any readable form', async () => {
    const key = randomBytes(32);
    const wrapped = await wrapKey(key);
    expect(wrapped).not.toContain(key.toString('base64'));
    expect(wrapped).not.toContain(key.toString('base64url'));
    expect((await unwrapKey(wrapped)).equals(key)).toBe(true);
    const [v, iv, body, tag] = wrapped.split('.');
    await expect(unwrapKey([v, iv, `${body}A`, tag].join('.'))).rejects.toThrow();
  });

  it('a wrapped key opens only with the guest KEK, never with the token secret', async () => {
    const key = randomBytes(32);
    const wrapped = await wrapKey(key);
    const kek = process.env.TROVELESS_GUEST_KEK;
    try {
      process.env.TROVELESS_GUEST_KEK =
        process.env.TROVELESS_TOKEN_SECRET ?? 'token-secret-token-secret-token-secret';
      await expect(unwrapKey(wrapped)).rejects.toThrow();
      process.env.TROVELESS_GUEST_KEK = 'another-guest-kek-another-guest-kek-0000';
      await expect(unwrapKey(wrapped)).rejects.toThrow();
    } finally {
      process.env.TROVELESS_GUEST_KEK = kek;
    }
    await expect(unwrapKey('v1.a.b.c')).rejects.toThrow(/older Troveless/);
  });

  it('passwords sealed for a guest open only with its key', () => {
    const key = randomBytes(32);
    const sealed = encryptFor(key, { users: [{ name: 'u', password: 'hunter2' }] });
    expect(sealed).not.toContain('hunter2');
    expect(decryptWith(key, sealed)).toEqual({ users: [{ name: 'u', password: 'hunter2' }] });
    expect(() => decryptWith(randomBytes(32), sealed)).toThrow();
  });
});
