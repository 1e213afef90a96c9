import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { unwrapKey, wrapKey } from '../../lib/guest/keys.ts';
import { openEnvelope, parseGuestRequest, seal, verifySignature } from '../../lib/guest/protocol.ts';
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

// The order's and the envelope's rules as zod states them (they were these schemas until the
// guest agent stopped loading zod as it starts): the checks by hand accept and keep exactly that.
const ZodGuestRequest = z.object({
  id: z.string().min(1),
  instance_id: z.string().min(1),
  method: z.string().min(1),
  args: z.record(z.string(), z.unknown()).default({}),
  sent: z.number(),
  reply_token: z.string().optional(),
});
const ZodEnvelope = z.object({
  instance_id: z.string().min(1),
  body: z.string().min(2),
  signature: z.string().min(1),
});

describe('orders and envelopes checked without zod', () => {
  // Objects near the shape of an order: each field mostly valid, sometimes anything else, so that
  // many are orders and most of the others differ from one in a field or two.
  const field = fc.oneof(
    fc.string({ maxLength: 3 }),
    fc.integer(),
    fc.double(),
    fc.constant(null),
    fc.boolean(),
    fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue(), { maxKeys: 2 }),
    fc.array(fc.integer(), { maxLength: 2 }),
  );
  const mostly = <T>(valid: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: field });
  const text = fc.string({ minLength: 1, maxLength: 4 });
  const orderLike = fc.record(
    {
      id: mostly(text),
      instance_id: mostly(text),
      method: mostly(text),
      args: mostly(fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue(), { maxKeys: 2 })),
      sent: mostly(fc.double({ noNaN: true, noDefaultInfinity: true })),
      reply_token: mostly(fc.string({ maxLength: 4 })),
      extra: field,
    },
    { requiredKeys: [] },
  );

  it("accept and return what zod's order schema does", () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(orderLike, fc.jsonValue()), (value) => {
        const body = JSON.stringify(value) ?? 'null';
        const expected = ZodGuestRequest.safeParse(JSON.parse(body));
        if (expected.success) accepted++;
        expect(parseGuestRequest(body)).toEqual(expected.success ? expected.data : undefined);
      }),
      { numRuns: 500 },
    );
    // Both ways were tried, not only refusals.
    expect(accepted).toBeGreaterThan(20);
    const order = { id: 'op-1', instance_id: 'i-1', method: 'prepare', sent: 1.5 };
    expect(parseGuestRequest(JSON.stringify(order))).toEqual({ ...order, args: {} });
    expect(parseGuestRequest('not json')).toBeUndefined();
  });

  it("accept and return what zod's envelope schema does", () => {
    let accepted = 0;
    const envelopeLike = fc.record(
      { instance_id: mostly(text), body: mostly(text), signature: mostly(text), extra: field },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(envelopeLike, fc.jsonValue()), (value) => {
        const body = JSON.stringify(value) ?? 'null';
        const expected = ZodEnvelope.safeParse(JSON.parse(body));
        if (expected.success) accepted++;
        expect(openEnvelope(body)).toEqual(expected.success ? expected.data : undefined);
      }),
      { numRuns: 500 },
    );
    expect(accepted).toBeGreaterThan(20);
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
