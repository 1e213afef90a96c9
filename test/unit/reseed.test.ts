import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FATAL_BINLOG_READ, reseedReason } from '../../agent/engines/mariadb-replication.ts';
import { ReseedMarker } from '../../agent/engines/reseed.ts';
import { POSTGRESQL_VERSIONS } from '../../lib/catalog/postgresql-versions.ts';
import { ReplicationReport } from '../../lib/guest/protocol.ts';
import { deriveStatus } from '../../lib/instances/status.ts';
import { decideReseed, type ReseedFacts, reseedExecution } from '../../lib/replication/reseed.ts';

// The pure parts of the re-seed (issue 12): when the guest says a member cannot follow its
// source without one, and when the control plane starts it.

const need = { since: 1_000, reason: 'Got fatal error 1236 from master' };
const facts = (over: Partial<ReseedFacts> = {}): ReseedFacts => ({
  need,
  replicaOf: 'src',
  task: 'NONE',
  reseededFor: undefined,
  source: { task: 'NONE', replicaOf: undefined },
  ...over,
});

describe('the decision to re-seed', () => {
  it('starts for a settled replica whose guest says it needs one', () => {
    expect(decideReseed(facts())).toEqual({ start: true });
    expect(decideReseed(facts({ task: 'RESTART_REQUIRED' }))).toEqual({ start: true });
  });

  it('starts once per need: a later heartbeat saying the same thing starts nothing', () => {
    expect(decideReseed(facts({ reseededFor: need.since }))).toMatchObject({ start: false });
    expect(decideReseed(facts({ reseededFor: need.since - 1 }))).toEqual({ start: true });
    expect(reseedExecution('m1', need.since)).toBe(reseedExecution('m1', need.since));
  });

  it('waits while a failover or any task is under way, or the set is not settled', () => {
    expect(decideReseed(facts({ need: undefined }))).toMatchObject({ start: false });
    expect(decideReseed(facts({ task: 'EJECTING' }))).toMatchObject({ start: false, why: /busy/ });
    expect(decideReseed(facts({ task: 'RESEEDING' }))).toMatchObject({ start: false, why: /busy/ });
    expect(decideReseed(facts({ replicaOf: undefined }))).toMatchObject({ start: false });
    expect(decideReseed(facts({ source: undefined }))).toMatchObject({ start: false, why: /gone/ });
    expect(decideReseed(facts({ source: { task: 'PROMOTING', replicaOf: undefined } }))).toMatchObject({
      start: false,
      why: /source is busy/,
    });
    expect(decideReseed(facts({ source: { task: 'NONE', replicaOf: 'other' } }))).toMatchObject({
      start: false,
    });
  });
});

describe("the guest's detection", () => {
  it("MariaDB: the source's error 1236 (a diverged or purged GTID) needs a re-seed; others do not", () => {
    const diverged = {
      Slave_IO_Running: 'No',
      Last_IO_Errno: FATAL_BINLOG_READ,
      Last_IO_Error:
        "Got fatal error 1236 from master when reading data from binary log: 'Error: connecting slave requested to start from GTID 0-1-12, which is not in the master's binlog. Since the master's binlog contains GTIDs with higher sequence numbers, it probably means that the slave has diverged due to executing extra erroneous transactions'",
    };
    expect(reseedReason(diverged)).toMatch(/diverged/);
    expect(reseedReason({ Last_IO_Errno: 2003, Last_IO_Error: "Can't connect to server" })).toBeUndefined();
    expect(reseedReason({ Last_IO_Errno: 0, Last_IO_Error: '' })).toBeUndefined();
    expect(reseedReason(undefined)).toBeUndefined();
  });

  it('PostgreSQL: a version without a pg_rewind of its own major (16 here) is re-seeded', () => {
    const rewind = Object.fromEntries(POSTGRESQL_VERSIONS.map((v) => [v.name, v.rewind]));
    expect(rewind).toEqual({ '15': true, '16': false, '17': true });
  });

  it('keeps the first need until a re-seed clears it, and the heartbeat carries it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reseed-'));
    try {
      const marker = new ReseedMarker(dir);
      expect(marker.current()).toBeUndefined();
      const first = await marker.save('diverged');
      expect(await marker.save('diverged again')).toEqual(first);
      expect(ReplicationReport.parse({ role: 'replica', reseed_required: first }).reseed_required).toEqual(
        first,
      );
      // A new agent process finds it.
      expect(new ReseedMarker(dir).current()).toEqual(first);
      await marker.clear();
      expect(marker.current()).toBeUndefined();
      expect(new ReseedMarker(dir).current()).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

it('a member being re-seeded shows BUILD (as a replica seeded at create); a failed one ERROR', () => {
  const base = {
    service_status: 'shutdown',
    service_status_updated: '2026-12-05T00:00:00',
    server_status: 'ACTIVE',
  };
  const now = new Date('2026-12-05T00:00:10Z');
  expect(deriveStatus({ ...base, task_status: 'RESEEDING' }, now, 90)).toMatchObject({ status: 'BUILD' });
  expect(deriveStatus({ ...base, task_status: 'BUILDING_ERROR_REPLICA' }, now, 90)).toMatchObject({
    status: 'ERROR',
  });
});
