import { describe, expect, it } from 'vitest';
import { roundOrder } from '../../bench/provision.ts';
import { Phases, parsePhases } from '../../lib/phases.ts';

describe('phase timings', () => {
  it('logs phases as one line the benches read back', async () => {
    const phases = new Phases();
    await phases.time('user', async () => {});
    phases.add('mkfs', 31.6);
    phases.add('mkfs', 10);
    await expect(
      phases.time('mount', async () => {
        throw new Error('busy');
      }),
    ).rejects.toThrow('busy');
    const line = `launched srv-1 for instance i on 127.77.0.2:3306 (${phases})`;
    expect(String(phases)).toMatch(/^user \d+ ms, mkfs 42 ms, mount \d+ ms$/);
    const read = parsePhases(/\((.*)\)$/.exec(line)?.[1] ?? '');
    expect([...read.keys()]).toEqual(['user', 'mkfs', 'mount']);
    expect(read.get('mkfs')).toBe(42);
  });

  it('interleaves the provision bench fairly: each step in each place, isolated first half the time', () => {
    const rounds = [1, 2, 3, 4, 5, 6].map(roundOrder);
    for (const step of ['isolated', 'plain', 'bare'] as const)
      for (const place of [0, 1, 2]) expect(rounds.filter((r) => r[place] === step)).toHaveLength(2);
    const isolatedFirst = rounds.filter((r) => r.indexOf('isolated') < r.indexOf('plain'));
    expect(isolatedFirst).toHaveLength(3);
  });
});
