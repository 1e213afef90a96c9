import { NotFound } from '../errors.ts';
import { loadInstance } from '../instances/operations.ts';
import { updateInstance } from '../instances/repository.ts';
import { validate } from '../validation.ts';
import { type BackupPolicy, PutBackupPolicyRequest } from './schemas.ts';

// Troveless's per-instance backup policy (`PUT /v1.0/{project_id}/instances/{id}/backup_policy`).
// Trove has no scheduler; a policy says when to back an instance up and how long to keep the
// backups the schedule made.

export type { BackupPolicy, BackupRetention } from './schemas.ts';

/** Validates a request body; throws BadRequest ("Validation error: backup_policy['schedule'] ..."). */
export function parsePolicy(body: unknown): BackupPolicy {
  return validate(PutBackupPolicyRequest, body).backup_policy;
}

/** Sets (or replaces) the policy; the schedule starts afresh. */
export async function setPolicy(projectId: string, instanceId: string, body: unknown): Promise<BackupPolicy> {
  const instance = await loadInstance(projectId, instanceId);
  const policy = parsePolicy(body);
  await updateInstance(projectId, instance.id, {
    set: { backup_policy: policy, backup_policy_created: new Date().toISOString() },
    // A policy put here is no longer the cron trigger it may have been made through.
    remove: ['backup_policy_state', 'backup_policy_trigger'],
  });
  return policy;
}

/** Everything a policy keeps on its instance item. */
export const POLICY_ATTRIBUTES = [
  'backup_policy',
  'backup_policy_state',
  'backup_policy_created',
  'backup_policy_trigger',
];

export async function getPolicy(projectId: string, instanceId: string) {
  const instance = await loadInstance(projectId, instanceId);
  if (!instance.backup_policy) throw new NotFound('No backup policy is set for this instance.');
  return { backup_policy: instance.backup_policy, state: instance.backup_policy_state ?? {} };
}

export async function removePolicy(projectId: string, instanceId: string): Promise<void> {
  const instance = await loadInstance(projectId, instanceId);
  await updateInstance(projectId, instance.id, {
    remove: POLICY_ATTRIBUTES,
  });
}
