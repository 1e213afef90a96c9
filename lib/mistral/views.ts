import type { BackupItem } from '../backups/model.ts';
import { nextRun, parseUtc } from '../backups/schedule.ts';
import type { BackupPolicy } from '../backups/schemas.ts';
import type { InstanceItem } from '../instances/model.ts';
import { BACKUP_WORKFLOW, type CronTriggerRecord } from './model.ts';

// Mistral v2's resources (mistral/api/controllers/v2/resources.py) as python-mistralclient reads
// them, built from backup policies and the backups their schedule took.

/** Mistral's own id for the one workflow, fixed so that triggers and executions agree on it. */
export const BACKUP_WORKFLOW_ID = '6a1c0b5e-2f64-4d8e-9c3a-7b0f5e1d2c48';

/** Mistral's timestamps: `YYYY-MM-DD HH:MM:SS`, UTC. */
export function mistralTime(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/** An instance item that carries a backup policy. */
export type PolicyInstance = InstanceItem & { backup_policy: BackupPolicy; backup_policy_created: string };

/**
 * The cron trigger a policy reads as: the one it was made through, or, for a policy put on
 * Troveless's own route, a trigger named after the instance whose pattern is the policy's schedule.
 */
export function triggerOf(item: PolicyInstance): CronTriggerRecord {
  if (item.backup_policy_trigger) return item.backup_policy_trigger;
  const policy = item.backup_policy;
  return {
    id: item.id,
    name: item.id,
    workflow_name: BACKUP_WORKFLOW,
    workflow_input: JSON.stringify({
      instance: item.id,
      name: 'scheduled',
      description: null,
      incremental: (policy.full_every ?? 1) > 1,
    }),
    workflow_params: '{}',
    pattern: policy.schedule,
    remaining_executions: null,
    first_execution_time: null,
    created_at: mistralTime(parseUtc(item.backup_policy_created)),
  };
}

export function triggerView(item: PolicyInstance) {
  const t = triggerOf(item);
  const anchor = parseUtc(item.backup_policy_state?.last_run ?? item.backup_policy_created);
  let next: string | null = null;
  try {
    next =
      item.backup_policy.enabled === false ? null : mistralTime(nextRun(item.backup_policy.schedule, anchor));
  } catch {
    next = null; // a schedule with no run left
  }
  return {
    ...t,
    workflow_id: BACKUP_WORKFLOW_ID,
    scope: 'private',
    next_execution_time: next,
    updated_at: null,
    project_id: item.project_id,
  };
}

const STATES: Record<BackupItem['status'], string> = {
  NEW: 'RUNNING',
  BUILDING: 'RUNNING',
  COMPLETED: 'SUCCESS',
  FAILED: 'ERROR',
  DELETE_FAILED: 'ERROR',
};

export function executionState(b: BackupItem): string {
  return STATES[b.status] ?? 'ERROR';
}

/** A scheduled backup as the execution of its instance's trigger that took it. */
export function executionView(b: BackupItem, trigger: CronTriggerRecord) {
  const state = executionState(b);
  return {
    id: b.id,
    workflow_id: BACKUP_WORKFLOW_ID,
    workflow_name: trigger.workflow_name,
    workflow_namespace: '',
    description: `Workflow execution created by cron trigger '(${trigger.id})'.`,
    params: '{}',
    task_execution_id: null,
    root_execution_id: null,
    source_execution_id: null,
    state,
    state_info: state === 'ERROR' ? (b.fault ?? `backup ${b.status}`) : null,
    // troveclient matches executions to their schedule by this input.
    input: trigger.workflow_input,
    output:
      state === 'RUNNING' ? '{}' : JSON.stringify({ backup: { id: b.id, name: b.name, status: b.status } }),
    created_at: mistralTime(parseUtc(b.created)),
    updated_at: mistralTime(parseUtc(b.updated)),
    project_id: b.project_id,
    published_global: '{}',
  };
}
