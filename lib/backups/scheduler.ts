import { type BackupSummary, backupsToPrune } from './retention.ts';
import { dueAt, parseUtc } from './schedule.ts';
import type { BackupPolicy } from './schemas.ts';

// The body of the scheduled Lambda: start the backups that are due, then prune what retention
// no longer keeps. Storage, Trove calls and logging are injected so a fake clock can drive it.

export interface PolicyRecord {
  project_id: string;
  instance_id: string;
  policy: BackupPolicy;
  /** When the policy was put; a rate schedule counts its intervals from here. */
  created: string;
  /** The due time of the last run (not the wall-clock time it ran), ISO. */
  last_run?: string;
  /** Incrementals since the last full; absent means unknown, so the next one is full. */
  runs_since_full?: number;
  /** Runs left before the policy ends (a Mistral trigger's remaining_executions); absent: no end. */
  remaining_runs?: number;
}

export interface SchedulerDeps {
  listPolicies(): Promise<PolicyRecord[]>;
  listBackups(projectId: string, instanceId: string): Promise<BackupSummary[]>;
  /** Starts a backup; `name` is deterministic per due time so a retried run starts nothing twice. */
  startBackup(p: PolicyRecord, opts: { name: string; incremental: boolean }): Promise<'started' | 'skipped'>;
  deleteBackup(projectId: string, backupId: string): Promise<void>;
  recordRun(p: PolicyRecord, state: { last_run: string; runs_since_full: number }): Promise<void>;
  log?(line: string, fields?: Record<string, unknown>): void;
}

export interface SchedulerReport {
  /** `<instance_id>/<backup name>` of each backup started. */
  started: string[];
  /** `<instance_id>/<backup name>` of each due backup that startBackup skipped. */
  skipped: string[];
  /** Ids of the backups deleted. */
  pruned: string[];
  /** Instance ids whose policy threw; the others still ran. */
  failed: string[];
}

export async function runScheduler(now: Date, deps: SchedulerDeps): Promise<SchedulerReport> {
  const report: SchedulerReport = { started: [], skipped: [], pruned: [], failed: [] };
  for (const p of await deps.listPolicies()) {
    if (!p.policy.enabled) continue;
    try {
      await runPolicy(p, now, deps, report);
    } catch (err) {
      report.failed.push(p.instance_id);
      deps.log?.('backup policy failed', {
        project_id: p.project_id,
        instance_id: p.instance_id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  return report;
}

async function runPolicy(p: PolicyRecord, now: Date, deps: SchedulerDeps, report: SchedulerReport) {
  const due = dueAt(p.policy, p, now, parseUtc(p.created));
  let backups = await deps.listBackups(p.project_id, p.instance_id);
  if (due) {
    const incremental = !needsFull(p, backups);
    // Minute precision: policies run at most hourly, and a retry for the same due time must
    // produce the same name.
    const name = `scheduled-${due.toISOString().slice(0, 16)}Z`;
    const outcome = await deps.startBackup(p, { name, incremental });
    report[outcome === 'started' ? 'started' : 'skipped'].push(`${p.instance_id}/${name}`);
    deps.log?.(`scheduled backup ${outcome}`, { instance_id: p.instance_id, name, incremental });
    // A skip (already started by an earlier attempt) still closes the window.
    await deps.recordRun(p, {
      last_run: due.toISOString(),
      runs_since_full: incremental ? (p.runs_since_full ?? 0) + 1 : 0,
    });
    // Retention must see the new backup, so the parent it builds on stays.
    backups = await deps.listBackups(p.project_id, p.instance_id);
  }
  // In order, and stopping at the first failure: a parent goes only after its children.
  for (const id of backupsToPrune(backups, p.policy.retention, now)) {
    await deps.deleteBackup(p.project_id, id);
    report.pruned.push(id);
    deps.log?.('scheduled backup pruned', { instance_id: p.instance_id, backup_id: id });
  }
}

/** Full unless the policy asks for incrementals, the cycle is not over, and there is a full to build on. */
export function needsFull(p: PolicyRecord, backups: BackupSummary[]): boolean {
  const every = p.policy.full_every ?? 1;
  if (every <= 1 || p.runs_since_full === undefined || p.runs_since_full + 1 >= every) return true;
  return !backups.some((b) => b.scheduled && b.status === 'COMPLETED' && !b.parent_id);
}
