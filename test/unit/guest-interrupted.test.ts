import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfigFile } from '../../lib/compute/driver.ts';
import { nowSeconds, seal } from '../../lib/guest/protocol.ts';
import { cleanGuests, guestWith } from './guest-fixture.ts';

// An agent runs each order once. One that died running an order (and was started again, as a
// guest's service manager would) answers that order as failed, so the workflow waiting for it
// ends with a fault instead of waiting, kept alive by heartbeats, for an answer that never comes.

afterEach(cleanGuests);

/** Another agent process on the same server: the same base dir. */
const layoutOn = (baseDir: string) => ({ baseDir }) as AgentConfigFile['layout'];

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

  const order = (id: string, reply_token: string) => ({
    id,
    instance_id: 'i-1',
    method: 'restart',
    args: {},
    sent: nowSeconds(),
    reply_token,
  });

  it('is answered again, not run again, when its answer was lost and the workflow sends it again', async () => {
    let restarts = 0;
    const { guest, key, results } = guestWith(
      {
        restart: async () => {
          restarts++;
        },
        status: async () => 'healthy',
        filesystemStats: async () => ({ total_bytes: 1, used_bytes: 0 }),
      },
      {},
      { lostAnswers: 1, lostHeartbeats: true },
    );
    // The send fails (and the heartbeat the restart sends before its answer: that does not fail it): the order's message stays on the queue (handle rejects), its answer kept.
    await expect(guest.handle(seal(key, 'i-1', order('op-3', 'first')))).rejects.toThrow(/cannot be reached/);
    expect(results).toEqual([]);
    // The step retried (or resumed after a restart of the control plane): same id, a new token.
    await guest.handle(seal(key, 'i-1', order('op-3', 'second')));
    expect(restarts).toBe(1);
    expect(results).toEqual([
      { operation_id: 'op-3', operation: 'restart', reply_token: 'second', ok: true, result: null },
    ]);
  });

  it('is not answered twice while it still runs', async () => {
    let finish = () => {};
    const { guest, key, results } = guestWith({
      restart: () =>
        new Promise<void>((done) => {
          finish = done;
        }),
      status: async () => 'healthy',
      filesystemStats: async () => ({ total_bytes: 1, used_bytes: 0 }),
    });
    const first = guest.handle(seal(key, 'i-1', order('op-4', 't')));
    await guest.handle(seal(key, 'i-1', order('op-4', 't')));
    expect(results).toEqual([]);
    finish();
    await first;
    expect(results).toEqual([
      { operation_id: 'op-4', operation: 'restart', reply_token: 't', ok: true, result: null },
    ]);
  });

  it('sends at boot the answer the agent stopped while sending, not a failure', async () => {
    const { guest, key, baseDir, results } = guestWith(
      {
        restart: async () => {},
        status: async () => 'healthy',
        filesystemStats: async () => ({ total_bytes: 1, used_bytes: 0 }),
      },
      {},
      { lostAnswers: 1 },
    );
    await expect(guest.handle(seal(key, 'i-1', order('op-5', 't')))).rejects.toThrow();
    expect(results).toEqual([]);
    expect(existsSync(join(baseDir, 'operation-in-flight.json'))).toBe(true);
    // The next agent process on the same base dir.
    const next = guestWith({ status: async () => 'healthy' }, { layout: layoutOn(baseDir) });
    await next.guest.boot();
    expect(next.results).toEqual([
      { operation_id: 'op-5', operation: 'restart', reply_token: 't', ok: true, result: null },
    ]);
    expect(existsSync(join(baseDir, 'operation-in-flight.json'))).toBe(false);
  });

  it('is answered as failed when sent again with no answer kept (run by an earlier agent)', async () => {
    const { baseDir } = guestWith({});
    writeFileSync(join(baseDir, 'operations-seen.json'), JSON.stringify(['op-6']));
    const again = guestWith({ status: async () => 'healthy' }, { layout: layoutOn(baseDir) });
    await again.guest.handle(seal(again.key, 'i-1', order('op-6', 't')));
    expect(again.results).toEqual([
      {
        operation_id: 'op-6',
        operation: 'restart',
        reply_token: 't',
        ok: false,
        error: { type: 'Interrupted', message: expect.stringMatching(/no answer of restart/) },
      },
    ]);
  });
});
