import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineManager } from '../../agent/engines/manager.ts';
import { Guest } from '../../agent/guest.ts';
import type { Reporter } from '../../agent/reporter.ts';
import type { AgentConfigFile } from '../../lib/compute/driver.ts';
import { nowSeconds, seal } from '../../lib/guest/protocol.ts';

// An agent runs each order once. One that died running an order (and was started again, as a
// guest's service manager would) answers that order as failed, so the workflow waiting for it
// ends with a fault instead of waiting, kept alive by heartbeats, for an answer that never comes.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function guestWith(engine: Partial<EngineManager>) {
  const baseDir = mkdtempSync(join(tmpdir(), 'guest-'));
  dirs.push(baseDir);
  const key = randomBytes(32);
  const results: unknown[] = [];
  const reporter = {
    result: async (payload: unknown) => {
      results.push(payload);
    },
    heartbeat: async () => {},
  } as unknown as Reporter;
  const config = {
    instance_id: 'i-1',
    report_interval: 1,
    guest_queue_url: 'http://queue',
    datastore_manager: 'redis',
    layout: { baseDir },
  } as unknown as AgentConfigFile;
  const guest = new Guest(config, key, engine as EngineManager, {} as SQSClient, reporter, () => {});
  return { guest, key, baseDir, results };
}

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
