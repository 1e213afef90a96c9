import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StaleTerm, TermStore, termAllows } from '../../agent/term.ts';
import { ReplicationModeRequest } from '../../lib/instances/schemas.ts';
import { decideFailover, type FailoverFacts, quorumOf } from '../../lib/replication/failover.ts';
import { askedReplicas } from '../../lib/replication/switchover.ts';

// The pure parts of automatic failover (lib/replication/failover.ts) and of the guest's fence
// (agent/term.ts): when a set fails over, and which orders a guest refuses.

const now = 1_000_000;
const facts = (over: Partial<FailoverFacts> = {}): FailoverFacts => ({
  now,
  expirySeconds: 5,
  failover: 'automatic',
  sourceTask: 'NONE',
  sourceHealthy: now - 10,
  locked: false,
  replicas: [
    { id: 'r1', heard: now - 1, sourceReachable: false },
    { id: 'r2', heard: now - 1, sourceReachable: false },
  ],
  ...over,
});

describe('quorum', () => {
  it('is a majority of the whole set, the silent source counting as one vote', () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 1, 2, 2, 3]);
  });
});

describe('decideFailover', () => {
  it('starts when a quorum of replicas cannot reach the source and its engine is silent past the expiry', () => {
    expect(decideFailover(facts())).toEqual({ start: true, votes: ['r1', 'r2'] });
  });

  it('does not start while the source engine answered within the expiry (a blip)', () => {
    expect(decideFailover(facts({ sourceHealthy: now - 4 })).start).toBe(false);
  });

  it('does not start when the replicas still reach the engine (only the agent died)', () => {
    const replicas = [
      { id: 'r1', heard: now - 1, sourceReachable: true },
      { id: 'r2', heard: now - 1, sourceReachable: true },
    ];
    expect(decideFailover(facts({ replicas, sourceHealthy: now - 60 }))).toMatchObject({ start: false });
  });

  it('counts only fresh votes, and needs a quorum of them', () => {
    const replicas = [
      { id: 'r1', heard: now - 30, sourceReachable: false },
      { id: 'r2', heard: now - 1, sourceReachable: true },
      { id: 'r3', heard: now - 1, sourceReachable: false },
    ];
    expect(decideFailover(facts({ replicas })).start).toBe(false);
    replicas[0] = { id: 'r1', heard: now - 2, sourceReachable: false };
    expect(decideFailover(facts({ replicas }))).toEqual({ start: true, votes: ['r1', 'r3'] });
  });

  it('never starts for a manual set, a busy source, a locked set or a set without replicas', () => {
    expect(decideFailover(facts({ failover: 'manual' })).start).toBe(false);
    expect(decideFailover(facts({ sourceTask: 'PROMOTING' })).start).toBe(false);
    expect(decideFailover(facts({ locked: true })).start).toBe(false);
    expect(decideFailover(facts({ replicas: [] })).start).toBe(false);
  });

  it('treats a source that never reported a healthy engine as silent', () => {
    expect(decideFailover(facts({ sourceHealthy: undefined })).start).toBe(true);
  });
});

describe('terms on the guest', () => {
  it('admits orders of its term or newer, and orders without one', () => {
    expect(termAllows(3, 3)).toBe(true);
    expect(termAllows(3, 4)).toBe(true);
    expect(termAllows(3, undefined)).toBe(true);
    expect(termAllows(3, 2)).toBe(false);
  });

  it('remembers the newest term across restarts and refuses an older one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troveless-term-'));
    try {
      const store = new TermStore(dir);
      store.admit('attach_replica', 2);
      store.setFailover('automatic');
      const again = new TermStore(dir);
      expect(again.term).toBe(2);
      expect(again.failover).toBe('automatic');
      expect(() => again.admit('enable_as_master', 1)).toThrow(StaleTerm);
      again.admit('enable_as_master', 5);
      expect(new TermStore(dir).term).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the replication request', () => {
  it('takes mode, failover or both, and nothing else', () => {
    expect(ReplicationModeRequest.safeParse({ failover: 'automatic' }).success).toBe(true);
    expect(ReplicationModeRequest.safeParse({ mode: 'sync', failover: 'manual' }).success).toBe(true);
    expect(ReplicationModeRequest.safeParse({ failover: 'sometimes' }).success).toBe(false);
    expect(ReplicationModeRequest.safeParse({}).success).toBe(false);
    expect(ReplicationModeRequest.safeParse({ failover: 'automatic', extra: 1 }).success).toBe(false);
  });
});

describe('which replicas an eject asks where they stand', () => {
  const replicas = [
    { id: 'alive', heard: now - 2 },
    { id: 'dead', heard: now - 60 },
    { id: 'never', heard: undefined },
  ];
  it('leaves out of an async set the replicas silent past the expiry, who still follow later', () => {
    expect(askedReplicas('async', replicas, now, 8)).toEqual({ asked: ['alive'], silent: ['dead', 'never'] });
  });
  it('asks every replica of a sync set: the silent one may hold the last acknowledged commit', () => {
    expect(askedReplicas('sync', replicas, now, 8)).toEqual({
      asked: ['alive', 'dead', 'never'],
      silent: [],
    });
  });
  it('asks them all when none is heard, so that the step says who did not answer', () => {
    expect(askedReplicas('async', replicas.slice(1), now, 8)).toEqual({
      asked: ['dead', 'never'],
      silent: [],
    });
  });
});
