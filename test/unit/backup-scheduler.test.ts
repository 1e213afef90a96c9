import { describe, expect, it } from 'vitest';
import type { BackupPolicy } from '../../lib/backups/policy.ts';
import type { BackupSummary } from '../../lib/backups/retention.ts';
import { HOUR_MS } from '../../lib/backups/schedule.ts';
import {
  type PolicyRecord,
  runScheduler,
  type SchedulerDeps,
  type SchedulerReport,
} from '../../lib/backups/scheduler.ts';

interface StoredBackup extends BackupSummary {
  name: string;
  instance_id: string;
  incremental: boolean;
}

/** Trove and the policy table in memory, with Trove's rules that matter here. */
class FakeCloud implements SchedulerDeps {
  now = new Date(0);
  backups: StoredBackup[] = [];
  deleted: string[] = [];
  lines: string[] = [];
  private seq = 0;
  constructor(public policies: PolicyRecord[]) {}

  async listPolicies() {
    return this.policies.map((p) => ({ ...p }));
  }
  async listBackups(_project: string, instanceId: string) {
    return this.backups
      .filter((b) => b.instance_id === instanceId)
      .map(({ id, parent_id, status, created, scheduled }) => ({
        id,
        status,
        created,
        scheduled,
        ...(parent_id ? { parent_id } : {}),
      }));
  }
  async startBackup(p: PolicyRecord, opts: { name: string; incremental: boolean }) {
    const mine = this.backups.filter((b) => b.instance_id === p.instance_id);
    if (mine.some((b) => b.name === opts.name)) return 'skipped' as const;
    // Trove's `incremental: 1` builds on the instance's last COMPLETED backup.
    const parent = opts.incremental ? mine.filter((b) => b.status === 'COMPLETED').at(-1) : undefined;
    if (opts.incremental && !parent) throw new Error('no backup to build on');
    this.backups.push({
      id: `bk-${++this.seq}`,
      name: opts.name,
      instance_id: p.instance_id,
      incremental: opts.incremental,
      status: 'NEW',
      created: this.now.toISOString().slice(0, 19),
      scheduled: true,
      ...(parent ? { parent_id: parent.id } : {}),
    });
    return 'started' as const;
  }
  async deleteBackup(_project: string, id: string) {
    // Trove would take the children along; the scheduler must never rely on that.
    if (this.backups.some((b) => b.parent_id === id)) throw new Error(`${id} still has children`);
    this.backups = this.backups.filter((b) => b.id !== id);
    this.deleted.push(id);
  }
  async recordRun(p: PolicyRecord, state: { last_run: string; runs_since_full: number }) {
    const stored = this.policies.find((q) => q.instance_id === p.instance_id)!;
    Object.assign(stored, state);
  }
  log(line: string) {
    this.lines.push(line);
  }
  /** The guest finishes every running backup. */
  finish(status = 'COMPLETED') {
    for (const b of this.backups) if (b.status === 'NEW') b.status = status;
  }
}

const t0 = Date.UTC(2024, 0, 1);
const policy = (p: Partial<BackupPolicy> = {}): BackupPolicy => ({
  schedule: 'rate(6 hours)',
  full_every: 4,
  retention: { count: 5 },
  enabled: true,
  ...p,
});
const record = (instance_id: string, p: Partial<BackupPolicy> = {}): PolicyRecord => ({
  project_id: 'proj',
  instance_id,
  policy: policy(p),
  created: new Date(t0).toISOString(),
});

async function tick(cloud: FakeCloud, hours: number): Promise<SchedulerReport> {
  cloud.now = new Date(t0 + hours * HOUR_MS);
  return runScheduler(cloud.now, cloud);
}

describe('runScheduler', () => {
  it('over 3 days at hourly ticks takes 12 backups, F I I I, and keeps the 5 newest with their chain', async () => {
    const cloud = new FakeCloud([record('i1')]);
    cloud.backups.push({
      id: 'mine',
      name: 'before-upgrade',
      instance_id: 'i1',
      incremental: false,
      status: 'COMPLETED',
      created: '2023-06-01T00:00:00',
      scheduled: false,
    });
    const started: string[] = [];
    const prunedAt: Record<string, number> = {};
    for (let h = 1; h <= 72; h++) {
      cloud.finish();
      const report = await tick(cloud, h);
      expect(report.failed).toEqual([]);
      started.push(...report.started);
      for (const id of report.pruned) prunedAt[id] = h;
    }
    cloud.finish();
    await tick(cloud, 73);

    expect(started).toHaveLength(12);
    expect(started.slice(0, 3)).toEqual([
      'i1/scheduled-2024-01-01T06:00Z',
      'i1/scheduled-2024-01-01T12:00Z',
      'i1/scheduled-2024-01-01T18:00Z',
    ]);
    expect(started.at(-1)).toBe('i1/scheduled-2024-01-04T00:00Z');
    const scheduled = ['bk-1', 'bk-2', 'bk-3', 'bk-4', 'bk-5', 'bk-6', 'bk-7', 'bk-8'];
    expect(cloud.deleted).toEqual(['bk-4', 'bk-3', 'bk-2', 'bk-1']);
    // The first chain goes once the 9th backup completes and the newest 5 no longer reach it.
    expect(prunedAt).toEqual({ 'bk-1': 55, 'bk-2': 55, 'bk-3': 55, 'bk-4': 55 });
    const left = cloud.backups.filter((b) => b.scheduled);
    expect(left.map((b) => b.id)).toEqual([...scheduled.slice(4), 'bk-9', 'bk-10', 'bk-11', 'bk-12']);
    // bk-5..bk-7 stay beyond the 5 newest because bk-8 is an incremental on them.
    expect(left.map((b) => (b.incremental ? 'I' : 'F')).join('')).toBe('FIIIFIII');
    expect(left.map((b) => b.parent_id ?? null)).toEqual([
      null,
      'bk-5',
      'bk-6',
      'bk-7',
      null,
      'bk-9',
      'bk-10',
      'bk-11',
    ]);
    expect(cloud.backups.some((b) => b.id === 'mine')).toBe(true);
    expect(cloud.policies[0]).toMatchObject({ last_run: '2024-01-04T00:00:00.000Z', runs_since_full: 3 });
  });

  it('takes a due backup once, however often it runs at the same time', async () => {
    const cloud = new FakeCloud([record('i1')]);
    const first = await tick(cloud, 6);
    const second = await tick(cloud, 6);
    expect(first.started).toEqual(['i1/scheduled-2024-01-01T06:00Z']);
    expect(second).toEqual({ started: [], skipped: [], pruned: [], failed: [] });
    expect(cloud.backups).toHaveLength(1);
  });

  it('starts nothing twice when recording the run failed and the tick is retried', async () => {
    const cloud = new FakeCloud([record('i1')]);
    const recordRun = cloud.recordRun.bind(cloud);
    cloud.recordRun = async () => {
      throw new Error('throttled');
    };
    expect((await tick(cloud, 6)).failed).toEqual(['i1']);
    cloud.recordRun = recordRun;
    const retry = await tick(cloud, 6);
    expect(retry.skipped).toEqual(['i1/scheduled-2024-01-01T06:00Z']);
    expect(cloud.backups).toHaveLength(1);
    expect(cloud.policies[0]?.last_run).toBe('2024-01-01T06:00:00.000Z');
  });

  it('runs a window missed while it was down once, on the schedule grid', async () => {
    const cloud = new FakeCloud([record('i1')]);
    const report = await tick(cloud, 50);
    expect(report.started).toEqual(['i1/scheduled-2024-01-03T00:00Z']);
    expect((await tick(cloud, 51)).started).toEqual([]);
    expect((await tick(cloud, 54)).started).toEqual(['i1/scheduled-2024-01-03T06:00Z']);
  });

  it('takes a full when there is no completed full to build on', async () => {
    const cloud = new FakeCloud([record('i1')]);
    await tick(cloud, 6);
    cloud.finish('FAILED');
    await tick(cloud, 12);
    expect(cloud.backups.map((b) => b.incremental)).toEqual([false, false]);
    expect(cloud.policies[0]?.runs_since_full).toBe(0);
  });

  it('always takes fulls without full_every', async () => {
    const cloud = new FakeCloud([record('i1', { full_every: undefined, retention: { count: 10 } })]);
    for (let h = 6; h <= 24; h += 6) {
      cloud.finish();
      await tick(cloud, h);
    }
    expect(cloud.backups.map((b) => b.incremental)).toEqual([false, false, false, false]);
  });

  it('goes on with the other policies when one fails, and leaves disabled ones alone', async () => {
    const cloud = new FakeCloud([record('i1'), record('i2'), record('i3', { enabled: false })]);
    const listBackups = cloud.listBackups.bind(cloud);
    cloud.listBackups = async (project, instance) => {
      if (instance === 'i1') throw new Error('Trove is down');
      return listBackups(project, instance);
    };
    const report = await tick(cloud, 6);
    expect(report.failed).toEqual(['i1']);
    expect(report.started).toEqual(['i2/scheduled-2024-01-01T06:00Z']);
    expect(cloud.lines).toContain('backup policy failed');
    expect(cloud.backups.map((b) => b.instance_id)).toEqual(['i2']);
  });

  it('reports a policy whose schedule no longer parses as failed', async () => {
    const cloud = new FakeCloud([record('i1', { schedule: 'rate(soon)' }), record('i2')]);
    const report = await tick(cloud, 6);
    expect(report.failed).toEqual(['i1']);
    expect(report.started).toHaveLength(1);
  });
});
