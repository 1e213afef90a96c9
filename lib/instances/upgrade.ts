import { deleteBackupItem, putBackup } from '../backups/repository.ts';
import { newBackupItem } from '../backups/service.ts';
import { matchVersion } from '../catalog/match.ts';
import { loadVersions } from '../catalog/store.ts';
import { type DatastoreVersion, datastoreRefOf } from '../catalog/types.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, OverLimit, UnprocessableEntity } from '../errors.ts';
import { quotaChanges, quotaExceededMessage } from '../quotas.ts';
import { startWorkflow } from '../workflows.ts';
import type { InstanceItem, UpgradeRecord } from './model.ts';
import { assertCanAct } from './operations.ts';
import { transact, updateItem } from './repository.ts';
import { upgradeRefusalFor } from './upgrade-rules.ts';

// Trove's upgrade (`PUT`/`PATCH /instances/{id}` with `datastore_version`, TROVE_API.md §2.3,
// §9.7): the checks, then in one transaction the instance is marked UPGRADING with the backup
// taken first (recorded NEW, holding its quota) and the instance-upgrade workflow started. The
// workflow ends the task whatever happens (upgrade-steps.ts).

/** Trove's DatastoreVersion.load(instance's datastore, ref); a version of another datastore is a 400. */
function targetVersion(versions: DatastoreVersion[], item: InstanceItem, ref: string): DatastoreVersion {
  const byId = versions.find((v) => v.id === ref);
  if (byId) return byId;
  const own = versions.filter((v) => v.datastore_name === item.datastore.type);
  return matchVersion(own, ref);
}

export async function upgradeInstance(item: InstanceItem, ref: string): Promise<void> {
  const versions = await loadVersions();
  const target = targetVersion(versions, item, ref);
  const refusal = upgradeRefusalFor(versions, item.datastore, target);
  if (refusal) throw new BadRequest(refusal);
  // A member of a replica set would leave its set on another major version than its peers.
  if (item.replica_of_id || item.replica_ids?.length)
    throw new BadRequest('Upgrading a member of a replica set is not supported: detach it first.');
  assertCanAct(item);
  if (item.running_backup_id)
    throw new UnprocessableEntity(`Instance ${item.id} is not currently available: a backup is running.`);
  const quota = await quotaChanges(item.project_id, { backups: 1 });
  if (quota.exceeded.length) throw new OverLimit(quotaExceededMessage(quota.exceeded));
  // Execution names are at most 80 characters: the instance id and the time keep them unique.
  const execution = `upgrade-${item.id}-${Date.now()}`;
  const backup = {
    ...(await newBackupItem(item, {
      name: `${item.name}-before-upgrade-to-${target.name}`,
      description: `Taken by the upgrade from ${item.datastore.version} to ${target.name}.`,
    })),
    // A delete while it runs asks this workflow, not a backup-create, whether it still runs.
    upgrade_execution: execution,
  };
  const record: UpgradeRecord = {
    execution,
    started: troveTime(),
    backup_id: backup.id,
    from: { ...item.datastore },
    to: datastoreRefOf(target),
  };
  await putBackup(backup);
  const claimed = await transact([
    updateItem(item.project_id, item.id, {
      set: { task_status: 'UPGRADING', upgrade: record, running_backup_id: backup.id },
      remove: ['fault'],
      condition: {
        expression: 'task_status IN (:none, :rr) AND attribute_not_exists(running_backup_id)',
        values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED' },
      },
    }),
    ...quota.items,
  ]);
  if (!claimed) {
    await deleteBackupItem(item.project_id, backup.id);
    throw new UnprocessableEntity(
      `Instance ${item.id} is not currently available for an action to be performed.`,
    );
  }
  try {
    await startWorkflow('instance-upgrade', execution, {
      project_id: item.project_id,
      instance_id: item.id,
      execution,
      backup_id: backup.id,
      datastore_version: target.name,
    });
  } catch (err) {
    // Nothing will ever end this task: undo it, the backup and its quota included.
    const back = await quotaChanges(item.project_id, { backups: -1 });
    await transact([
      updateItem(item.project_id, item.id, {
        set: { task_status: item.task_status },
        remove: ['upgrade', 'running_backup_id'],
        condition: { expression: 'upgrade.execution = :e', values: { ':e': execution } },
      }),
      ...back.items,
    ]);
    await deleteBackupItem(item.project_id, backup.id);
    throw err;
  }
}
