import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BackupRetention } from '../../lib/backups/policy.ts';
import { ancestors, type BackupSummary, backupsToPrune } from '../../lib/backups/retention.ts';
import { DAY_MS, HOUR_MS } from '../../lib/backups/schedule.ts';

const base = Date.UTC(2024, 0, 1);
const now = new Date(base + 30 * DAY_MS);
// Trove's timestamps are naive UTC, so the fixtures are too.
const iso = (t: number) => new Date(t).toISOString().slice(0, 19);

/** Scheduled backups one day apart from `base`; `parent` is the index of the parent. */
function series(...specs: { status?: string; parent?: number; scheduled?: boolean }[]): BackupSummary[] {
  return specs.map((s, i) => ({
    id: `b${i}`,
    status: s.status ?? 'COMPLETED',
    created: iso(base + i * DAY_MS),
    scheduled: s.scheduled ?? true,
    ...(s.parent === undefined ? {} : { parent_id: `b${s.parent}` }),
  }));
}
// A full followed by `n - 1` incrementals, each on the previous backup.
const chain = (start: number, n: number) =>
  Array.from({ length: n }, (_, i) => (i === 0 ? {} : { parent: start + i - 1 }));

describe('backupsToPrune', () => {
  it('keeps the newest count and the chain they need, deleting children first', () => {
    const backups = series(...chain(0, 4), ...chain(4, 4));
    // b3 is among the newest 5, so its whole chain stays.
    expect(backupsToPrune(backups, { count: 5 }, now)).toEqual([]);
    expect(backupsToPrune(backups, { count: 4 }, now)).toEqual(['b3', 'b2', 'b1', 'b0']);
    // b4 (the second full) is older than the newest 3 but b5..b7 need it.
    expect(backupsToPrune(backups, { count: 3 }, now)).toEqual(['b3', 'b2', 'b1', 'b0']);
    expect(backupsToPrune(backups, { count: 1 }, now)).toEqual(['b3', 'b2', 'b1', 'b0']);
  });

  it('keeps everything younger than days, and with count a backup either keeps', () => {
    const backups = series(...Array.from({ length: 10 }, () => ({})));
    const at = new Date(base + 10 * DAY_MS);
    expect(backupsToPrune(backups, { days: 3 }, at)).toEqual([
      'b7',
      'b6',
      'b5',
      'b4',
      'b3',
      'b2',
      'b1',
      'b0',
    ]);
    expect(backupsToPrune(backups, { days: 3, count: 5 }, at)).toEqual(['b4', 'b3', 'b2', 'b1', 'b0']);
    expect(backupsToPrune(backups, { days: 6, count: 2 }, at)).toEqual(['b4', 'b3', 'b2', 'b1', 'b0']);
  });

  it('never leaves days-only retention without its newest good backup', () => {
    const backups = series({}, {}, { status: 'FAILED' });
    expect(backupsToPrune(backups, { days: 1 }, now)).toEqual(['b0']);
  });

  it("leaves the user's backups alone, and the scheduled ones they build on", () => {
    const backups = series({}, {}, { scheduled: false }, { parent: 1, scheduled: false }, {}, {});
    expect(backupsToPrune(backups, { count: 1 }, now)).toEqual(['b4', 'b0']);
  });

  it('prunes failed backups older than the newest kept one, and never running ones', () => {
    const backups = series(
      { status: 'FAILED' },
      { status: 'DELETE_FAILED' },
      {},
      { status: 'NEW', parent: 2 },
      { status: 'BUILDING' },
      {},
      { status: 'FAILED' },
    );
    expect(backupsToPrune(backups, { count: 1 }, now)).toEqual(['b1', 'b0']);
  });

  it('terminates on cycles and missing parents', () => {
    const backups: BackupSummary[] = [
      { id: 'x', parent_id: 'y', status: 'COMPLETED', created: iso(base), scheduled: true },
      { id: 'y', parent_id: 'x', status: 'COMPLETED', created: iso(base + HOUR_MS), scheduled: true },
      { id: 'z', parent_id: 'gone', status: 'COMPLETED', created: iso(base + 2 * HOUR_MS), scheduled: true },
    ];
    expect(backupsToPrune(backups, { count: 1 }, now).sort()).toEqual(['x', 'y']);
  });
});

const statuses = ['COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED', 'NEW', 'BUILDING', 'DELETE_FAILED'];
const backupsArb = (incrementals: boolean) =>
  fc
    .array(
      fc.record({
        scheduled: fc.boolean(),
        status: fc.constantFrom(...statuses),
        parent: incrementals ? fc.option(fc.nat(), { nil: undefined }) : fc.constant(undefined),
        gapHours: fc.integer({ min: 0, max: 48 }),
      }),
      { maxLength: 30 },
    )
    .map((rows) => {
      let t = base;
      return rows.map((r, i): BackupSummary => {
        t += r.gapHours * HOUR_MS;
        const parent = r.parent === undefined || i === 0 ? undefined : `b${r.parent % i}`;
        return {
          id: `b${i}`,
          status: r.status,
          created: iso(t),
          scheduled: r.scheduled,
          ...(parent ? { parent_id: parent } : {}),
        };
      });
    });
const retentionArb: fc.Arbitrary<BackupRetention> = fc.oneof(
  fc.record({ count: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ days: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ count: fc.integer({ min: 1, max: 10 }), days: fc.integer({ min: 1, max: 20 }) }),
);
const nowArb = fc.integer({ min: 0, max: 60 }).map((d) => new Date(base + d * DAY_MS));
const completedScheduled = (backups: BackupSummary[]) =>
  backups
    .filter((b) => b.scheduled && b.status === 'COMPLETED')
    .sort((a, b) => b.created.localeCompare(a.created) || b.id.localeCompare(a.id));

describe('backupsToPrune properties', () => {
  it('never prunes what a remaining backup needs, a user backup or a running one; children go first', () => {
    fc.assert(
      fc.property(backupsArb(true), retentionArb, nowArb, (backups, retention, at) => {
        const pruned = backupsToPrune(backups, retention, at);
        const byId = new Map(backups.map((b) => [b.id, b]));
        const gone = new Set(pruned);
        expect(gone.size).toBe(pruned.length);
        for (const id of pruned) {
          const b = byId.get(id)!;
          expect(b.scheduled).toBe(true);
          expect(['COMPLETED', 'FAILED', 'DELETE_FAILED']).toContain(b.status);
        }
        for (const b of backups) {
          const chainIds = ancestors(b, byId).map((a) => a.id);
          if (!gone.has(b.id)) expect(chainIds.filter((id) => gone.has(id))).toEqual([]);
          // Trove deletes a backup's children with it, so every child must already be gone.
          else
            for (const id of chainIds)
              if (gone.has(id)) expect(pruned.indexOf(b.id)).toBeLessThan(pruned.indexOf(id));
        }
        const completed = completedScheduled(backups);
        const keep = retention.count ?? 0;
        for (const b of completed.slice(0, keep)) expect(gone.has(b.id)).toBe(false);
        if (retention.days !== undefined) {
          for (const b of completed) {
            const young = at.getTime() - new Date(`${b.created}Z`).getTime() < retention.days * DAY_MS;
            if (young) expect(gone.has(b.id)).toBe(false);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps exactly the newest count completed scheduled backups when they are all full', () => {
    fc.assert(
      fc.property(backupsArb(false), fc.integer({ min: 1, max: 10 }), nowArb, (backups, count, at) => {
        const gone = new Set(backupsToPrune(backups, { count }, at));
        const completed = completedScheduled(backups);
        const left = completed.filter((b) => !gone.has(b.id));
        expect(left).toEqual(completed.slice(0, count));
      }),
      { numRuns: 300 },
    );
  });
});
