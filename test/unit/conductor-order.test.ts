import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { guestOrder } from '../../lib/conductor/order.ts';

// A batch's reports run side by side, but one guest's run one after another, in the batch's
// order, whatever each one's outcome.

const ingest = vi.hoisted(() => vi.fn<(body: string) => Promise<string>>());
vi.mock('#lib/conductor/apply', () => ({ ingest }));

const envelope = (instance: string, n: number) =>
  JSON.stringify({ instance_id: instance, body: JSON.stringify({ n }), signature: 'sig' });
const nameOf = (body: string) => {
  const { instance_id, body: inner } = JSON.parse(body) as { instance_id: string; body: string };
  return `${instance_id}:${(JSON.parse(inner) as { n: number }).n}`;
};
const settle = () => new Promise((r) => setImmediate(r));

/** A handler whose calls each wait until the test opens their gate; `events` says what ran when. */
function gated() {
  const events: string[] = [];
  const gates = new Map<string, { open(): void; fail(err: Error): void }>();
  const handle = (body: string) => {
    const name = nameOf(body);
    events.push(`start ${name}`);
    return new Promise<string>((done, failed) => {
      gates.set(name, {
        open: () => {
          events.push(`end ${name}`);
          done(name);
        },
        fail: (err) => {
          events.push(`failed ${name}`);
          failed(err);
        },
      });
    });
  };
  const gate = (name: string) => {
    const g = gates.get(name);
    if (!g) throw new Error(`${name} has not started`);
    return g;
  };
  return { events, handle, gate };
}

describe("the conductor's order within a batch", () => {
  it("takes one guest's reports one after another in the batch's order, and other guests' beside them", async () => {
    const inOrder = guestOrder();
    const { events, handle, gate } = gated();
    const batch = [envelope('a', 1), envelope('b', 1), envelope('a', 2), envelope('a', 3)].map((body) =>
      inOrder(body, handle),
    );
    await settle();
    // a:1 and b:1 run at once; a:2 waits for a:1, a:3 for a:2.
    expect(events).toEqual(['start a:1', 'start b:1']);
    gate('a:1').open();
    await settle();
    expect(events).toEqual(['start a:1', 'start b:1', 'end a:1', 'start a:2']);
    gate('b:1').open();
    gate('a:2').open();
    await settle();
    gate('a:3').open();
    expect(await Promise.all(batch)).toEqual(['a:1', 'b:1', 'a:2', 'a:3']);
    expect(inOrder.inFlight()).toBe(0);
  });

  it('goes on with the next report of a guest once one has failed, and gives each its own outcome', async () => {
    const inOrder = guestOrder();
    const { events, handle, gate } = gated();
    const first = inOrder(envelope('c', 1), handle);
    const second = inOrder(envelope('c', 2), handle);
    await settle();
    expect(events).toEqual(['start c:1']);
    gate('c:1').fail(new Error('the table did not answer'));
    await expect(first).rejects.toThrow('the table did not answer');
    await settle();
    gate('c:2').open();
    expect(await second).toBe('c:2');
    expect(events).toEqual(['start c:1', 'failed c:1', 'start c:2', 'end c:2']);
    expect(inOrder.inFlight()).toBe(0);
  });

  it('runs a body that names no guest at once', async () => {
    expect(await guestOrder()('not json', async (body: string) => body.length)).toBe(8);
  });

  it("is what the conductor's handler runs: a guest's records in order, a failed one reported for redelivery", async () => {
    const { handler } = await import('../../functions/conductor/ingest.ts');
    const { logger } = await import('../../lib/logger.ts');
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => {});
    const { events, handle, gate } = gated();
    ingest.mockImplementation(handle);
    const records = [envelope('d', 1), envelope('e', 1), envelope('d', 2)].map((body, i) => ({
      messageId: `m${i}`,
      body,
      attributes: { ApproximateReceiveCount: '1' },
    }));
    const answered = handler({ Records: records } as unknown as SQSEvent);
    await settle();
    expect(events).toEqual(['start d:1', 'start e:1']);
    gate('d:1').fail(new Error('the table did not answer'));
    await settle();
    gate('e:1').open();
    gate('d:2').open();
    expect(await answered).toEqual({ batchItemFailures: [{ itemIdentifier: 'm0' }] });
    expect(events).toEqual(['start d:1', 'start e:1', 'failed d:1', 'start d:2', 'end e:1', 'end d:2']);
    // The failure is said, by its message id and error, never with the guest's signed report.
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[1]).toEqual({
      messageId: 'm0',
      receiveCount: '1',
      error: 'the table did not answer',
      errorName: 'Error',
    });
    expect(JSON.stringify(warn.mock.calls)).not.toContain('sig');
    warn.mockRestore();
  });
});
