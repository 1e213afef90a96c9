import { describe, expect, it } from 'vitest';
import { waitFor } from '../../agent/engines/process.ts';

describe('waitFor', () => {
  it('asks the interval of each pause by the time waited so far, and returns what the probe found', async () => {
    const waited: number[] = [];
    let probes = 0;
    const found = await waitFor('the fourth probe', async () => (++probes === 4 ? 'up' : undefined), {
      timeoutMs: 5_000,
      intervalMs: (ms) => {
        waited.push(ms);
        return 1;
      },
    });
    expect(found).toBe('up');
    expect(probes).toBe(4);
    // One pause between each two probes, each asked with a time no shorter than the one before.
    expect(waited).toHaveLength(3);
    expect(waited).toEqual([...waited].sort((a, b) => a - b));
  });

  it('fails naming what it waited for once the time is out, with the probe’s last error', async () => {
    await expect(
      waitFor(
        'the engine',
        async () => {
          throw new Error('connect ENOENT');
        },
        { timeoutMs: 0, intervalMs: () => 1 },
      ),
    ).rejects.toThrow('the engine: still not done after 0 ms (last error: connect ENOENT)');
  });
});
