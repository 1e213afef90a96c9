import { ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { UnprocessableEntity } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';
import { updateInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { POLICY_ATTRIBUTES } from './policy.ts';
import { projectBackups } from './repository.ts';
import { type PolicyRecord, runScheduler, type SchedulerDeps } from './scheduler.ts';
import type { BackupPolicy } from './schemas.ts';
import { createBackup, deleteBackup } from './service.ts';

// The backup scheduler against the real tables: policies live on their instance items, backups
// are started and deleted through the same service as the API's.
const iso = (troveTime: string) => (troveTime.endsWith('Z') ? troveTime : `${troveTime}Z`);

const deps: SchedulerDeps = {
  async listPolicies() {
    const records: PolicyRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await documents.send(
        new ScanCommand({
          TableName: config.instancesTable,
          FilterExpression: 'attribute_exists(backup_policy)',
          ExclusiveStartKey: start,
        }),
      );
      for (const item of (page.Items ?? []) as InstanceItem[]) {
        records.push({
          project_id: item.project_id,
          instance_id: item.id,
          policy: item.backup_policy as BackupPolicy,
          created: item.backup_policy_created ?? iso(item.created),
          last_run: item.backup_policy_state?.last_run,
          runs_since_full: item.backup_policy_state?.runs_since_full,
          remaining_runs: item.backup_policy_trigger?.remaining_executions ?? undefined,
        });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return records;
  },
  async listBackups(projectId, instanceId) {
    return (await projectBackups(projectId))
      .filter((b) => b.instance_id === instanceId)
      .map((b) => ({
        id: b.id,
        parent_id: b.parent_id,
        status: b.status,
        created: iso(b.created),
        scheduled: b.scheduled === true,
      }));
  },
  async startBackup(p, opts) {
    const existing = (await projectBackups(p.project_id)).some(
      (b) => b.instance_id === p.instance_id && b.name === opts.name,
    );
    if (existing) return 'skipped';
    try {
      await createBackup(p.project_id, {
        name: opts.name,
        instance: p.instance_id,
        incremental: opts.incremental ? 1 : 0,
        scheduled: true,
      });
      return 'started';
    } catch (err) {
      // A busy instance (another backup, a restart) skips this window rather than failing it.
      if (err instanceof UnprocessableEntity) return 'skipped';
      throw err;
    }
  },
  deleteBackup: (projectId, backupId) => deleteBackup(projectId, backupId),
  async recordRun(p, state) {
    if (p.remaining_runs === undefined) {
      await updateInstance(p.project_id, p.instance_id, { set: { backup_policy_state: state } });
    } else if (p.remaining_runs <= 1) {
      // As Mistral deletes a cron trigger whose executions have run out.
      await updateInstance(p.project_id, p.instance_id, { remove: POLICY_ATTRIBUTES });
    } else {
      await documents.send(
        new UpdateCommand({
          TableName: config.instancesTable,
          Key: { project_id: p.project_id, id: p.instance_id },
          UpdateExpression: 'SET backup_policy_state = :s, backup_policy_trigger.remaining_executions = :n',
          ConditionExpression: 'attribute_exists(backup_policy_trigger)',
          ExpressionAttributeValues: { ':s': state, ':n': p.remaining_runs - 1 },
        }),
      );
    }
  },
  log: (line, fields) => logger.info(line, fields ?? {}),
};

export function runBackupScheduler(now: Date) {
  return runScheduler(now, deps);
}
