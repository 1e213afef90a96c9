import { getEventListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplicationState } from '../../agent/engines/replication-state.ts';
import { nowSeconds, seal } from '../../lib/guest/protocol.ts';
import { waitUntil } from '../../local/wait.ts';
import { cleanGuests, guestWith } from './guest-fixture.ts';

// How often a guest heartbeats: report_interval (60 s by default), and every second while its
// replica set fails over automatically (the conductor hears a replica's vote, and the source's
// silence, within a second: lib/replication/failover.ts). Every member's agent starts on
// report_interval and learns of automatic failover from a set_replication_mode order that comes
// in the middle of a wait. The bench once saw a failover start 45 s after the source's death:
// the replicas' loops finished their 60-s waits before heartbeating again.

afterEach(() => {
  vi.useRealTimers();
  cleanGuests();
});

const replicaEngine = {
  status: async () => 'healthy' as const,
  filesystemStats: async () => ({ total_bytes: 1, used_bytes: 0 }),
  counters: async () => ({ connections: 0, queries: 0, replication_lag_seconds: null }),
  replicationStatus: async () => ({ role: 'replica' as const, source: '10.0.0.1:6379', running: true }),
  setReplicationMode: async () => {},
};

describe('the heartbeat loop', () => {
  it('heartbeats every second from the moment its set turns failover on, mid-wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const { guest, key, baseDir, heartbeats } = guestWith(replicaEngine, { report_interval: 60 });
    writeFileSync(join(baseDir, 'prepared'), '');
    const loop = guest.heartbeatLoop();
    // Manual failover: one heartbeat, then report_interval's wait.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(heartbeats).toHaveLength(1);

    await guest.handle(seal(key, 'i-1', modeOrder('mode-1', 'automatic')));
    const afterOrder = heartbeats.length;
    // Ten seconds later, still 45 s before the wait that began before the order would have ended.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(heartbeats.length - afterOrder).toBeGreaterThanOrEqual(9);
    // Each wait's abort listener went with it (one a second, kept, grew the heap for days).
    const { abort } = guest as unknown as { abort: AbortController };
    expect(getEventListeners(abort.signal, 'abort').length).toBeLessThanOrEqual(1);

    guest.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    await loop;
  });

  it('goes back to report_interval when its set turns failover off', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const { guest, key, baseDir, heartbeats } = guestWith(replicaEngine, { report_interval: 60 });
    writeFileSync(join(baseDir, 'prepared'), '');
    const loop = guest.heartbeatLoop();
    await guest.handle(seal(key, 'i-1', modeOrder('mode-2', 'automatic')));
    let before = heartbeats.length;
    await vi.advanceTimersByTimeAsync(3_500);
    expect(heartbeats.length - before).toBeGreaterThanOrEqual(3);

    await guest.handle(seal(key, 'i-1', modeOrder('mode-3', 'manual')));
    before = heartbeats.length;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(heartbeats.length - before).toBeLessThanOrEqual(1);

    guest.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    await loop;
  });
});

describe('a new guest’s first report', () => {
  const newEngine = {
    status: async () => 'healthy' as const,
    filesystemStats: async () => ({ total_bytes: 1, used_bytes: 0 }),
    counters: async () => ({ connections: 0, queries: 0, replication_lag_seconds: null }),
    replicationStatus: async () => undefined,
    prepare: async () => {},
  };

  it('is prepare’s own "building" when prepare comes within the boot wait: one report, not two', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const { guest, key, heartbeats } = guestWith(newEngine, { report_interval: 60 });
    const loop = guest.heartbeatLoop();
    await vi.advanceTimersByTimeAsync(300);
    expect(heartbeats).toEqual([]);
    await guest.handle(
      seal(key, 'i-1', { id: 'p-1', instance_id: 'i-1', method: 'prepare', args: {}, sent: nowSeconds() }),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    // Prepare's "building", then its "healthy" (sent with its answer, not as a heartbeat).
    expect(heartbeats).toEqual([{ service_status: 'building' }]);
    guest.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    await loop;
  });

  it('is sent after the boot wait when no prepare comes: a silent guest stays distinguishable', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const { guest, heartbeats } = guestWith(newEngine, { report_interval: 60 });
    const loop = guest.heartbeatLoop();
    await vi.advanceTimersByTimeAsync(1_500);
    expect(heartbeats).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(heartbeats).toEqual([{ service_status: 'building' }]);
    guest.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    await loop;
  });
});

describe('a replica’s vote', () => {
  it('counts only for the source it probed: after a repoint, not until the new source is probed', async () => {
    // Source A's port refuses connections (a dead engine); B is where the member follows next.
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((ok) => closed.close(ok));
    const { guest, key, baseDir, heartbeats } = guestWith(replicaEngine, {
      report_interval: 60,
      datastore_manager: 'mysql',
    });
    writeFileSync(join(baseDir, 'prepared'), '');
    const role = new ReplicationState(baseDir);
    await role.save({
      role: 'replica',
      source: { host: '127.0.0.1', port: deadPort, user: 'r', password: 'p' },
    });
    await guest.handle(seal(key, 'i-1', modeOrder('mode-4', 'automatic')));
    const probing = guest.probeLoop();
    const votes = () =>
      heartbeats.map(
        (h) => (h as { replication?: { source_reachable?: boolean } }).replication?.source_reachable,
      );
    await waitUntil('a vote against source A', async () => (votes().includes(false) ? true : undefined), {
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    guest.stop();
    await probing;

    // Repointed to B (the role file changes before the order is answered): the next heartbeat
    // carries no vote, since the last probe was of A.
    await role.save({
      role: 'replica',
      source: { host: '127.0.0.2', port: deadPort, user: 'r', password: 'p' },
    });
    const before = heartbeats.length;
    await (guest as unknown as { heartbeat(): Promise<void> }).heartbeat();
    expect(heartbeats.length).toBe(before + 1);
    expect(votes().at(-1)).toBeUndefined();
  });
});

function modeOrder(id: string, failover: 'automatic' | 'manual') {
  return {
    id,
    instance_id: 'i-1',
    method: 'set_replication_mode',
    args: { mode: 'async', failover, term: 1 },
    sent: nowSeconds(),
  };
}
