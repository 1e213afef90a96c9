import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { limitedPath } from '../../lib/limits/index.ts';
import {
  applies,
  bucketOf,
  limitMessage,
  limitsFromEnvironment,
  limitView,
  parseLimits,
  pour,
  type RateLimit,
  troveDefaultLimits,
} from '../../lib/limits/rates.ts';

const get12: RateLimit = { verb: 'GET', uri: '*', regex: '.*', value: 12, unit: 'MINUTE' };

describe('parseLimits (Trove’s api-paste syntax)', () => {
  it('reads Trove’s defaults back from their text', () => {
    const text =
      '(POST, *, .*, 200, MINUTE);(PUT, *, .*, 200, MINUTE);(DELETE, *, .*, 200, MINUTE);' +
      '(GET, *, .*, 200, MINUTE);(POST, */mgmt, ^/mgmt, 200, MINUTE)';
    expect(parseLimits(text)).toEqual(troveDefaultLimits());
    expect(parseLimits(' (get, /x, ^/x, 5, second) ')).toEqual([
      { verb: 'GET', uri: '/x', regex: '^/x', value: 5, unit: 'SECOND' },
    ]);
    expect(parseLimits('  ')).toEqual([]);
  });

  it('refuses what Trove refuses', () => {
    expect(() => parseLimits('GET, *, .*, 5, MINUTE')).toThrow('parentheses');
    expect(() => parseLimits('(GET, *, .*, 5)')).toThrow('verb, uri, regex, value, unit');
    expect(() => parseLimits('(GET, *, .*, 0, MINUTE)')).toThrow('> 0');
    expect(() => parseLimits('(GET, *, .*, 5, WEEK)')).toThrow('Invalid units');
  });
});

describe('which requests a limit counts', () => {
  it('matches the verb and the path after the project', () => {
    const mgmt = troveDefaultLimits()[4] as RateLimit;
    expect(limitedPath('/v1.0/p1/mgmt/quotas/p2')).toBe('/mgmt/quotas/p2');
    expect(limitedPath('/v1.0/p1')).toBe('/');
    expect(applies(mgmt, 'POST', limitedPath('/v1.0/p1/mgmt/datastore-versions'))).toBe(true);
    expect(applies(mgmt, 'POST', limitedPath('/v1.0/p1/instances'))).toBe(false);
    expect(applies(mgmt, 'GET', limitedPath('/v1.0/p1/mgmt/quotas/p1'))).toBe(false);
  });

  it('gives a project its own limits by id or name, else the deployment’s', () => {
    const limitsOf = limitsFromEnvironment({
      TROVELESS_RATE_LIMITS: '(GET, *, .*, 1000, MINUTE)',
      TROVELESS_PROJECT_RATE_LIMITS: JSON.stringify({ slow: '(GET, *, .*, 12, MINUTE)', id9: '' }),
    });
    expect(limitsOf({ id: 'x', name: 'slow' })).toEqual([get12]);
    expect(limitsOf({ id: 'id9', name: 'y' })).toEqual([]);
    expect(limitsOf({ id: 'x', name: 'y' })[0]?.value).toBe(1000);
    expect(limitsFromEnvironment({})({ id: 'x', name: 'y' })).toEqual(troveDefaultLimits());
  });
});

describe('the leaky bucket', () => {
  it('takes `value` requests at once, then one per unit/value', () => {
    const b = bucketOf(get12);
    let drainsAt: number | undefined;
    for (let i = 0; i < 12; i++) {
      const p = pour(b, drainsAt, 1_000);
      if (!p.ok) throw new Error(`request ${i} refused`);
      drainsAt = p.drainsAt;
    }
    expect(pour(b, drainsAt, 1_000)).toEqual({ ok: false, delayMs: 5_000 });
    expect(pour(b, drainsAt, 6_000).ok).toBe(true);
    expect(limitMessage(get12)).toBe('Only 12 GET request(s) can be made to * every minute.');
  });

  it('never holds more than a unit, and a refused request never changes it (property)', () => {
    const b = bucketOf(get12);
    fc.assert(
      fc.property(fc.array(fc.nat(10_000), { maxLength: 60 }), (gaps) => {
        let now = 0;
        let drainsAt: number | undefined;
        for (const gap of gaps) {
          now += gap;
          const p = pour(b, drainsAt, now);
          if (p.ok) drainsAt = p.drainsAt;
          else expect(p.delayMs).toBeGreaterThan(0);
          expect((drainsAt ?? now) - now).toBeLessThanOrEqual(b.capacityMs + 1e-6);
        }
      }),
    );
  });

  it('shows what is left and when the next request may come, as Trove’s limit view', () => {
    const now = Date.UTC(2026, 10, 21, 2, 14, 11);
    expect(limitView(get12, undefined, now)).toEqual({
      nextAvailable: '2026-11-21T02:14:11Z',
      remaining: 12,
      unit: 'MINUTE',
      value: 12,
      verb: 'GET',
      uri: '*',
      regex: '.*',
    });
    // Full: the next slot drains in 5 s.
    expect(limitView(get12, now + 60_000, now)).toMatchObject({
      remaining: 0,
      nextAvailable: '2026-11-21T02:14:16Z',
    });
    expect(limitView(get12, now + 10_000, now).remaining).toBe(10);
  });
});

describe('the shared bucket under contention', () => {
  it('serves a request whose every conditional write lost a race while the bucket had room', async () => {
    const { ConditionalCheckFailedException } = await import('@aws-sdk/client-dynamodb');
    const { documents } = await import('../../lib/dynamo.ts');
    const { takeRequest } = await import('../../lib/limits/store.ts');
    const now = 1_800_000_000_000;
    let writes = 0;
    const send = vi.spyOn(documents, 'send').mockImplementation(async () => {
      writes++;
      // Another request moved the bucket a little each time: still far from full.
      throw new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
        Item: { drains_at: { N: String(now + writes) } },
      });
    });
    try {
      const limit = { verb: 'GET', uri: '*', regex: '.*', value: 1_000_000, unit: 'MINUTE' as const };
      expect(await takeRequest('p-contended', limit, now)).toBeUndefined();
      expect(writes).toBeGreaterThan(1);
    } finally {
      send.mockRestore();
    }
  });
});
