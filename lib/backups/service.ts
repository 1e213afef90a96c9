import { randomUUID } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  NoSuchKey,
} from '@aws-sdk/client-s3';
import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, Conflict, NotImplemented, OverLimit, UnprocessableEntity } from '../errors.ts';
import { newGuestKey, unwrapKey, wrapKey } from '../guest/keys.ts';
import type { InstanceItem } from '../instances/model.ts';
import { loadInstance } from '../instances/operations.ts';
import { transact, updateInstance, updateItem } from '../instances/repository.ts';
import { refusalToAct } from '../instances/status.ts';
import { quotaChanges, quotaExceededMessage } from '../quotas.ts';
import { s3Client } from '../s3.ts';
import { startWorkflow, workflowRunning } from '../workflows.ts';
import { incrementalRefusal, parentRefusal } from './incremental.ts';
import { type BackupItem, manifestKeyOf } from './model.ts';
import { deleteBackupItem, getBackup, projectBackups, putBackup, updateBackup } from './repository.ts';
import type { CreateBackupRequest } from './schemas.ts';

// Trove's backups (TROVE_API.md §7). A backup is recorded NEW with its own data key (wrapped;
// never stored in the bucket) and run by the backup workflow: the guest streams it to S3 and
// answers with its size, checksum and LSN; a guest that never answers leaves it FAILED.

const RUNNING: BackupItem['status'][] = ['NEW', 'BUILDING'];

/** A backup the API or the scheduler (marking it `scheduled`) asks for. */
export async function createBackup(
  projectId: string,
  req: CreateBackupRequest['backup'] & { scheduled?: boolean },
): Promise<BackupItem> {
  if (req.storage_driver === 'cinder') throw new NotImplemented('Only object-storage backups are supported.');
  const instanceId = req.instance.split('/').filter(Boolean).pop() ?? req.instance;
  const instance = await loadInstance(projectId, instanceId);
  const refusal = refusalToAct(instance) ?? (instance.running_backup_id ? 'a backup is running' : undefined);
  if (instance.task_status === 'BUILDING')
    throw new UnprocessableEntity(`Instance ${instance.id} is not ready.`);
  if (refusal) {
    throw new UnprocessableEntity(
      `Instance ${instance.id} is not currently available for an action to be performed (${refusal}).`,
    );
  }
  const parent = await parentFor(projectId, instance, req);
  if (parent) {
    const refusal = incrementalRefusal(instance.datastore);
    if (refusal) throw new NotImplemented(refusal);
    const unfit = parentRefusal(instance.datastore, parent);
    if (unfit) throw new BadRequest(unfit);
  }
  const quota = await quotaChanges(projectId, { backups: 1 });
  if (quota.exceeded.length) throw new OverLimit(quotaExceededMessage(quota.exceeded));

  const item = await newBackupItem(instance, {
    name: req.name,
    description: req.description,
    parent_id: parent?.id,
    scheduled: req.scheduled,
  });
  const id = item.id;
  // The instance shows BACKUP while it runs, and takes no second backup meanwhile.
  const marked = await transact([
    updateItem(projectId, instance.id, {
      set: { running_backup_id: id },
      condition: { expression: 'attribute_not_exists(running_backup_id)' },
    }),
    ...quota.items,
  ]);
  if (!marked)
    throw new UnprocessableEntity(`Instance ${instance.id} is not currently available: a backup is running.`);
  try {
    await putBackup(item);
    await startWorkflow('backup-create', id, {
      project_id: projectId,
      backup_id: id,
      instance_id: instance.id,
    });
  } catch (err) {
    await finishBackupOnInstance(projectId, instance.id, id);
    await updateBackup(projectId, id, {
      status: 'FAILED',
      fault: 'The backup workflow could not be started.',
    });
    throw err;
  }
  return item;
}

/** A NEW backup of `instance` with its own wrapped data key (not stored yet). */
export async function newBackupItem(
  instance: InstanceItem,
  req: { name: string; description?: string; parent_id?: string; scheduled?: boolean },
): Promise<BackupItem> {
  const id = randomUUID();
  const now = troveTime();
  return {
    project_id: instance.project_id,
    id,
    name: req.name,
    description: req.description,
    instance_id: instance.id,
    parent_id: req.parent_id,
    backup_type: req.parent_id ? 'incremental' : 'full',
    status: 'NEW',
    created: now,
    updated: now,
    datastore: {
      type: instance.datastore.type,
      version: instance.datastore.version,
      version_id: instance.datastore.version_id,
      manager: instance.datastore.manager,
    },
    bucket: config.backupBucket,
    key: `${instance.project_id}/${instance.id}/${id}.zst.enc`,
    wrapped_data_key: await wrapKey(newGuestKey()),
    scheduled: req.scheduled,
  };
}

/** `parent_id` names the parent; `incremental: 1` means the instance's last COMPLETED backup. */
async function parentFor(projectId: string, instance: InstanceItem, req: CreateBackupRequest['backup']) {
  if (req.parent_id) {
    const parent = await getBackup(projectId, req.parent_id);
    if (parent.instance_id !== instance.id)
      throw new BadRequest(`Backup ${parent.id} is not a backup of instance ${instance.id}.`);
    if (parent.status !== 'COMPLETED') throw new Conflict(`Backup ${parent.id} is not completed.`);
    return parent;
  }
  if (!req.incremental) return undefined;
  const done = (await projectBackups(projectId))
    .filter((b) => b.instance_id === instance.id && b.status === 'COMPLETED')
    .sort((a, b) => (a.created < b.created ? 1 : -1));
  if (!done[0])
    throw new BadRequest(`Instance ${instance.id} has no completed backup to build an incremental on.`);
  return done[0];
}

export async function finishBackupOnInstance(projectId: string, instanceId: string, backupId: string) {
  await updateInstance(projectId, instanceId, {
    remove: ['running_backup_id'],
    condition: { expression: 'running_backup_id = :b', values: { ':b': backupId } },
  }).catch(() => false);
}

/** Deletes a backup and, first, every incremental built on it (Trove deletes children recursively). */
/** `DELETE /backups/{id}`: 404 for a backup the project does not have. */
export async function removeBackup(projectId: string, id: string): Promise<void> {
  await getBackup(projectId, id);
  await deleteBackup(projectId, id);
}

export async function deleteBackup(projectId: string, id: string): Promise<void> {
  const all = await projectBackups(projectId);
  const target = all.find((b) => b.id === id);
  if (!target) throw new UnprocessableEntity(`Backup ${id} cannot be found.`);
  for (const child of all.filter((b) => b.parent_id === id)) await deleteBackup(projectId, child.id);
  if (RUNNING.includes(target.status)) {
    const running = target.upgrade_execution
      ? await workflowRunning('instance-upgrade', target.upgrade_execution)
      : await workflowRunning('backup-create', id);
    if (running) throw new UnprocessableEntity(`Backup ${id} is still running.`);
    // Its workflow is gone (the execution name is the backup id): nothing will ever finish it, so
    // it is failed here, as its workflow would have, and then deleted.
    await failOrphan(target);
  }
  try {
    // A PostgreSQL backup's manifest goes with it.
    if (target.manifest) {
      await s3Client().send(
        new DeleteObjectCommand({ Bucket: target.bucket, Key: manifestKeyOf(target.key) }),
      );
    }
    await s3Client().send(new DeleteObjectCommand({ Bucket: target.bucket, Key: target.key }));
  } catch (err) {
    if (!(err instanceof NoSuchKey)) {
      await updateBackup(projectId, id, { status: 'DELETE_FAILED', fault: (err as Error).message });
      throw err;
    }
  }
  await deleteBackupItem(projectId, id);
  const quota = await quotaChanges(projectId, { backups: -1 });
  await transact(quota.items);
}

async function failOrphan(backup: BackupItem): Promise<void> {
  await updateBackup(
    backup.project_id,
    backup.id,
    {
      status: 'FAILED',
      fault: 'The backup workflow ended without finishing the backup.',
      failed_at: troveTime(),
    },
    RUNNING,
  );
  await abortOpenUploads(backup);
  await finishBackupOnInstance(backup.project_id, backup.instance_id, backup.id);
}

/** A failed backup leaves no multipart upload open (a guest that died cannot abort its own). */
export async function abortOpenUploads(backup: Pick<BackupItem, 'bucket' | 'key'>): Promise<number> {
  const s3 = s3Client();
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: backup.bucket, Prefix: backup.key }));
  for (const upload of open.Uploads ?? []) {
    if (upload.Key !== backup.key) continue;
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: backup.bucket, Key: backup.key, UploadId: upload.UploadId }),
    );
  }
  return open.Uploads?.length ?? 0;
}

/** The restore chain of a backup: the full first, then each incremental in order. */
export async function restoreChain(projectId: string, backupId: string) {
  const chain: BackupItem[] = [];
  let next: string | undefined = backupId;
  while (next) {
    const b = await getBackup(projectId, next);
    if (b.status !== 'COMPLETED') throw new Conflict(`Backup ${b.id} is not completed.`);
    chain.unshift(b);
    next = b.parent_id;
  }
  return Promise.all(
    chain.map(async (b) => ({
      bucket: b.bucket,
      key: b.key,
      checksum: b.checksum ?? '',
      data_key: (await unwrapKey(b.wrapped_data_key)).toString('base64'),
      item: b,
    })),
  );
}

export { RUNNING };
