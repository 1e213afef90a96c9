import { describe, expect, it } from 'vitest';
import { interleaved, roundOrder } from '../../bench/interleaved.ts';

// The API bench's ratios hold only if every probe is measured under the same conditions: as
// often, with the same warm-up, and in every place of a round equally often.
describe('interleaved probes', () => {
  it.each([3, 6, 12])(
    'orders %i probes so that each takes every place and follows every other equally often',
    (count) => {
      const period = count % 2 === 1 ? 2 * count : count;
      const rounds = Array.from({ length: period }, (_, r) => roundOrder(r, count));
      const places = new Map<string, number>();
      const pairs = new Map<string, number>();
      for (const order of rounds) {
        expect([...order].sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
        order.forEach((p, i) => {
          places.set(`${p}@${i}`, (places.get(`${p}@${i}`) ?? 0) + 1);
          if (i > 0) pairs.set(`${order[i - 1]}>${p}`, (pairs.get(`${order[i - 1]}>${p}`) ?? 0) + 1);
        });
      }
      expect(places.size).toBe(count * count);
      expect(new Set(places.values())).toEqual(new Set([period / count]));
      expect(pairs.size).toBe(count * (count - 1));
      expect(new Set(pairs.values()).size).toBe(1);
    },
  );

  it('keeps the same number of samples for every probe, none from the warm-up', async () => {
    const calls: string[] = [];
    const probe = (name: string) => async () => {
      calls.push(name);
      return { ok: name !== 'b' };
    };
    const { samples } = await interleaved(
      { a: probe('a'), b: probe('b'), c: probe('c') },
      { rounds: 6, warmup: 2, clients: 1 },
    );
    expect(calls).toHaveLength(3 * 8);
    expect(samples.a).toHaveLength(6);
    expect(samples.b.every((s) => !s.ok)).toBe(true);
    expect(samples.c.every((s) => s.ok && s.ms >= 0)).toBe(true);
    // Sequential rounds are whole: every round of three calls holds each probe once.
    for (let i = 0; i < calls.length; i += 3) expect(new Set(calls.slice(i, i + 3)).size).toBe(3);
  });

  it('shares the rounds between concurrent clients, each probe still called once a round', async () => {
    let inFlight = 0;
    let most = 0;
    const probe = async () => {
      most = Math.max(most, ++inFlight);
      await Promise.resolve();
      inFlight--;
      return { ok: true };
    };
    const { samples } = await interleaved({ x: probe, y: probe }, { rounds: 10, warmup: 0, clients: 4 });
    expect(samples.x).toHaveLength(10);
    expect(samples.y).toHaveLength(10);
    expect(most).toBe(4);
  });
});
