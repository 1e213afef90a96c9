import { describe, expect, it } from 'vitest';
import { guestsInFlight, inGuestOrder } from '../../lib/conductor/order.ts';

// A batch's reports run side by side, but one guest's run one after another, in the batch's
// order, whatever each one's outcome.

const envelope = (instance: string, n: number) =>
  JSON.stringify({ instance_id: instance, body: JSON.stringify({ n }), signature: 'sig' });

describe("the conductor's order within a batch", () => {
  it("takes one guest's reports one after another in the batch's order, and other guests' beside them", async () => {
    const events: string[] = [];
    const gates = new Map<string, () => void>();
    const handle = (body: string) => {
      const { instance_id, body: inner } = JSON.parse(body) as { instance_id: string; body: string };
      const name = `${instance_id}:${(JSON.parse(inner) as { n: number }).n}`;
      events.push(`start ${name}`);
      return new Promise<string>((done) => {
        gates.set(name, () => {
          events.push(`end ${name}`);
          done(name);
        });
      });
    };
    const batch = [envelope('a', 1), envelope('b', 1), envelope('a', 2), envelope('a', 3)].map((body) =>
      inGuestOrder(body, handle),
    );
    await new Promise((r) => setImmediate(r));
    // a:1 and b:1 run at once; a:2 waits for a:1.
    expect(events).toEqual(['start a:1', 'start b:1']);
    gates.get('a:1')?.();
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['start a:1', 'start b:1', 'end a:1', 'start a:2']);
    gates.get('b:1')?.();
    gates.get('a:2')?.();
    await new Promise((r) => setImmediate(r));
    gates.get('a:3')?.();
    expect(await Promise.all(batch)).toEqual(['a:1', 'b:1', 'a:2', 'a:3']);
    expect(events.filter((e) => e.startsWith('start'))).toEqual([
      'start a:1',
      'start b:1',
      'start a:2',
      'start a:3',
    ]);
    expect(guestsInFlight()).toBe(0);
  });

  it('goes on with the next report of a guest after one that failed, and reports each outcome as its own', async () => {
    const seen: number[] = [];
    const handle = async (body: string) => {
      const n = (JSON.parse((JSON.parse(body) as { body: string }).body) as { n: number }).n;
      seen.push(n);
      if (n === 1) throw new Error('the table did not answer');
      return n;
    };
    const [first, second] = await Promise.allSettled([
      inGuestOrder(envelope('c', 1), handle),
      inGuestOrder(envelope('c', 2), handle),
    ]);
    expect(first).toMatchObject({ status: 'rejected', reason: { message: 'the table did not answer' } });
    expect(second).toEqual({ status: 'fulfilled', value: 2 });
    expect(seen).toEqual([1, 2]);
    expect(guestsInFlight()).toBe(0);
  });

  it('runs a body that names no guest at once', async () => {
    expect(await inGuestOrder('not json', async (body) => body.length)).toBe(8);
  });
});
