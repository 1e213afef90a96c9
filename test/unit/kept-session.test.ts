import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeptSession } from '../../agent/engines/kept-session.ts';

// The heartbeat's kept admin session: one session across heartbeats, opened again when one fails,
// and never a reason for a heartbeat or an engine stop to wait for ever.

interface Fake {
  id: number;
  closed: boolean;
  destroyed: boolean;
}

function sessions(opts: { closeHangs?: boolean } = {}) {
  const made: Fake[] = [];
  const kept = new KeptSession<Fake>(
    async () => {
      const s = { id: made.length + 1, closed: false, destroyed: false };
      made.push(s);
      return s;
    },
    async (s) => {
      if (opts.closeHangs) await new Promise(() => {});
      s.closed = true;
    },
    (s) => {
      s.destroyed = true;
    },
  );
  return { made, kept };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('KeptSession', () => {
  it('runs every use on one session until it is dropped, then opens another', async () => {
    const { made, kept } = sessions();
    expect(await kept.use(async (s) => s.id)).toBe(1);
    expect(await kept.use(async (s) => s.id)).toBe(1);
    await kept.drop();
    expect(made[0]).toMatchObject({ closed: true, destroyed: false });
    expect(await kept.use(async (s) => s.id)).toBe(2);
  });

  it('tries a failed use once more on a fresh session, and gives up after that', async () => {
    const { made, kept } = sessions();
    let calls = 0;
    expect(
      await kept.use(async (s) => {
        calls++;
        if (s.id === 1) throw new Error('connection lost');
        return s.id;
      }),
    ).toBe(2);
    expect(made[0]?.closed).toBe(true);
    await expect(
      kept.use(async () => {
        throw new Error('always');
      }),
    ).rejects.toThrow('always');
    expect(made).toHaveLength(3);
    expect(calls).toBe(2);
  });

  it('fails a use the engine never answers, and destroys a session whose close never ends', async () => {
    vi.useFakeTimers();
    const { made, kept } = sessions({ closeHangs: true });
    const hung = kept.use(() => new Promise<number>(() => {}));
    const outcome = hung.then(
      () => 'answered',
      (err: Error) => err.message,
    );
    await vi.advanceTimersByTimeAsync(20_000);
    expect(await outcome).toMatch(/the engine: no answer within/);
    // Both sessions it tried were destroyed once their close had waited a second.
    expect(made.map((s) => s.destroyed)).toEqual([true, true]);
  });
});
