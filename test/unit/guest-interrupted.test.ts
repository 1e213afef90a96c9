import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nowSeconds, seal } from '../../lib/guest/protocol.ts';
import { cleanGuests, guestWith } from './guest-fixture.ts';

// An agent runs each order once. One that died running an order (and was started again, as a
// guest's service manager would) answers that order as failed, so the workflow waiting for it
// ends with a fault instead of waiting, kept alive by heartbeats, for an answer that never comes.

afterEach(cleanGuests);

describe('an order the agent did not finish', () => {
  it('is answered as failed when the agent starts again', async () => {
    const { guest, baseDir, results } = guestWith({ status: async () => 'healthy' });
    const inFlight = join(baseDir, 'operation-in-flight.json');
    writeFileSync(inFlight, JSON.stringify({ id: 'op-1', method: 'prepare', reply_token: 'tok' }));
    await guest.boot();
    expect(results).toEqual([
      {
        operation_id: 'op-1',
        operation: 'prepare',
        reply_token: 'tok',
        ok: false,
        error: { type: 'Interrupted', message: expect.stringMatching(/stopped while running prepare/) },
      },
    ]);
    expect(existsSync(inFlight)).toBe(false);
  });

  it('is on disk only while it runs', async () => {
    let seenDuringRun = false;
    const { guest, key, baseDir, results } = guestWith({
      restart: async () => {
        seenDuringRun = existsSync(join(baseDir, 'operation-in-flight.json'));
      },
      status: async () => 'healthy',
      filesystemStats: async () => ({ total_bytes: 1, used_bytes: 0 }),
    });
    const order = {
      id: 'op-2',
      instance_id: 'i-1',
      method: 'restart',
      args: {},
      sent: nowSeconds(),
      reply_token: 't',
    };
    await guest.handle(seal(key, 'i-1', order));
    expect(seenDuringRun).toBe(true);
    expect(existsSync(join(baseDir, 'operation-in-flight.json'))).toBe(false);
    expect(results).toEqual([
      { operation_id: 'op-2', operation: 'restart', reply_token: 't', ok: true, result: null },
    ]);
  });
});
