import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Bell } from '../../agent/doorbell.ts';
import { cleanGuests, guestWith } from './guest-fixture.ts';

// The guest's receive loop beside its doorbell (agent/doorbell.ts): at rest it polls its queue
// only when rung, or every rest_poll_seconds; while the doorbell is down it long-polls as a guest
// without one does. On fake timers: each long poll "waits" its 20 s on the fake clock.

const BUSY_S = 60;
const REST_S = 300;
const doorbell = { url: 'ws://doorbell.invalid', busy_seconds: BUSY_S, rest_poll_seconds: REST_S };

/** A queue whose long polls wait on the (fake) clock until a message comes or their 20 s pass. */
function fakeQueue() {
  const pending: string[] = [];
  const taken: string[] = [];
  let receives = 0;
  let wake: (() => void) | undefined;
  const client = {
    send: async (command: { constructor: { name: string }; input: { WaitTimeSeconds?: number } }) => {
      if (command.constructor.name !== 'ReceiveMessageCommand') return {};
      receives++;
      if (!pending.length)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, (command.input.WaitTimeSeconds ?? 0) * 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      wake = undefined;
      const body = pending.shift();
      if (body) taken.push(body);
      return { Messages: body ? [{ Body: body, ReceiptHandle: body }] : [] };
    },
  } as unknown as SQSClient;
  return {
    client,
    taken,
    get receives() {
      return receives;
    },
    /** An order arrives on the queue (a long poll under way takes it at once). */
    send(body: string) {
      pending.push(body);
      wake?.();
    },
  };
}

class FakeBell implements Bell {
  rings = 0;
  open = true;
  #waiters = new Set<() => void>();
  async run(): Promise<void> {}
  wait(seen: number, ms: number): Promise<void> {
    if (this.rings !== seen || !this.open) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }
  ring(): void {
    this.rings++;
    for (const w of [...this.#waiters]) w();
  }
}

const seconds = (s: number) => vi.advanceTimersByTimeAsync(s * 1000);

describe('a guest with a doorbell', () => {
  let stop: () => Promise<void>;

  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'],
    });
  });
  afterEach(async () => {
    await stop?.();
    vi.useRealTimers();
    cleanGuests();
  });

  function start(bell: FakeBell) {
    const queue = fakeQueue();
    const { guest } = guestWith({}, { doorbell }, { sqs: queue.client, doorbell: bell });
    const loop = guest.receiveLoop();
    stop = async () => {
      guest.stop();
      await vi.runOnlyPendingTimersAsync();
      await loop;
    };
    return queue;
  }

  it('long-polls after an order, then rests: no request until its doorbell rings, and the ring brings the order', async () => {
    const bell = new FakeBell();
    const queue = start(bell);
    await seconds(BUSY_S + 1);
    const busy = queue.receives;
    expect(busy).toBeGreaterThanOrEqual(3); // 20 s polls through the busy minute
    await seconds(REST_S - 100);
    expect(queue.receives).toBe(busy);
    queue.send('order-1');
    bell.ring();
    await seconds(0.001);
    expect(queue.taken).toEqual(['order-1']);
    // The rung poll, and the next one: after an order the guest is busy again.
    expect(queue.receives).toBe(busy + 2);
  });

  it('takes an order whose ring was lost at its next rest poll', async () => {
    const bell = new FakeBell();
    const queue = start(bell);
    await seconds(BUSY_S + 20); // the busy minute's last poll has ended
    queue.send('order-unrung');
    await seconds(REST_S - 30);
    expect(queue.taken).toEqual([]);
    await seconds(30);
    expect(queue.taken).toEqual(['order-unrung']);
  });

  it('does not sleep through a ring that came during its last busy poll', async () => {
    const bell = new FakeBell();
    const queue = start(bell);
    // Polls run 0-20, 20-40 and 40-60 s; at 60 s the busy minute is over.
    await seconds(59);
    bell.ring(); // during the last busy poll, which ends empty: the order's message comes after it
    await seconds(1.5);
    queue.send('order-late');
    await seconds(0.001);
    expect(queue.taken).toEqual(['order-late']);
  });

  it('long-polls all the time while its doorbell is not connected', async () => {
    const bell = new FakeBell();
    bell.open = false;
    const queue = start(bell);
    await seconds(10 * 60);
    expect(queue.receives).toBeGreaterThanOrEqual(29); // one 20 s long poll after another
    queue.send('order-2');
    await seconds(0.001);
    expect(queue.taken).toEqual(['order-2']);
  });
});
