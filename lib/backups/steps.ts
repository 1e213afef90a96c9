import { isWaitTimeout, lastSeen } from '../conductor/faults.ts';
import { deliverAnswer, forgetWaitingTask, registerWaitingTask } from '../conductor/tasks.ts';
import { troveTime } from '../dynamo.ts';
import { unwrapKey } from '../guest/keys.ts';
import { beginOrder, operationIdOf } from '../guest/queues.ts';
import { encryptFor } from '../guest/sealed.ts';
import { findInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { manifestKeyOf } from './model.ts';
import { getBackup, updateBackup } from './repository.ts';
import { abortOpenUploads, finishBackupOnInstance } from './service.ts';

// Steps of the backup workflow (statemachines/backup-create.asl.yml), each idempotent.

export interface BackupStepInput {
  project_id: string;
  backup_id: string;
  instance_id: string;
}

/**
 * Orders the guest to stream the backup; the workflow waits for its answer (task token). A retry
 * of the step sends the same operation id, which the guest runs once (lib/conductor/tasks.ts).
 */
export async function sendBackupRequest(
  input: BackupStepInput & { task_token: string; execution_id?: string },
) {
  const backup = await getBackup(input.project_id, input.backup_id);
  const instance = await findInstance(input.instance_id);
  if (!instance || instance.project_id !== input.project_id)
    throw new Error(`instance ${input.instance_id} is gone`);
  const operationId = operationIdOf('create_backup', input.execution_id, input.task_token);
  // As an instance workflow's guest order (lib/instances/steps.ts): the order's record and queue
  // URL, the keys and the parent are asked for beside the registration of the waiting step.
  const order = beginOrder(instance.id, 'create_backup', input.task_token, operationId);
  const keys = Promise.all([unwrapKey(instance.wrapped_key), unwrapKey(backup.wrapped_data_key)]);
  const parentOf = backup.parent_id
    ? getBackup(input.project_id, backup.parent_id).then(async (parent) => ({
        parent,
        // PostgreSQL's incremental reads its parent's manifest, encrypted with the parent's key.
        parentKey: parent.manifest ? await unwrapKey(parent.wrapped_data_key) : undefined,
      }))
    : undefined;
  keys.catch(() => {});
  parentOf?.catch(() => {});
  const waiting = await registerWaitingTask(
    instance.project_id,
    instance.id,
    operationId,
    input.task_token,
    'create_backup',
  );
  if (!waiting) throw new Error(`instance ${input.instance_id} is gone`);
  if (waiting.answer) {
    await deliverAnswer(input.task_token, 'create_backup', waiting.answer);
    await forgetWaitingTask(instance.project_id, instance.id, operationId, input.task_token);
    return {};
  }
  await updateBackup(input.project_id, backup.id, { status: 'BUILDING' }, ['NEW', 'BUILDING']);
  const [[key, dataKey], ofParent] = await Promise.all([keys, parentOf]);
  const { parent, parentKey } = ofParent ?? {};
  await order.send(key, {
    backup_id: backup.id,
    bucket: backup.bucket,
    key: backup.key,
    backup_type: backup.backup_type,
    parent_lsn: parent?.lsn,
    // PostgreSQL: the parent's backup_manifest, where pg_basebackup --incremental starts from.
    parent_manifest: parent?.manifest ? { bucket: parent.bucket, key: manifestKeyOf(parent.key) } : undefined,
    // The data keys reach the guest only encrypted with the guest's own key.
    sealed: encryptFor(key, {
      data_key: dataKey.toString('base64'),
      ...(parentKey ? { parent_data_key: parentKey.toString('base64') } : {}),
    }),
  });
  return {};
}

export async function backupCompleted(
  input: BackupStepInput & {
    result: { size_bytes: number; checksum: string; lsn?: string; manifest?: boolean };
  },
) {
  await updateBackup(
    input.project_id,
    input.backup_id,
    {
      status: 'COMPLETED',
      size_bytes: input.result.size_bytes,
      checksum: input.result.checksum,
      lsn: input.result.lsn,
      // Where it is stored is ours to say (manifestKeyOf), never the guest's.
      ...(input.result.manifest === true ? { manifest: true } : {}),
    },
    ['NEW', 'BUILDING'],
  );
  await finishBackupOnInstance(input.project_id, input.instance_id, input.backup_id);
  return {};
}

/** FAILED with the reason; no multipart upload left open; the instance free for actions again. */
export async function backupFailed(input: BackupStepInput & { error: { Error?: string; Cause?: string } }) {
  const backup = await getBackup(input.project_id, input.backup_id);
  const instance = isWaitTimeout(input.error) ? await findInstance(input.instance_id) : undefined;
  const heard = instance ? `: ${lastSeen(instance)}` : '';
  const reason =
    input.error.Error === 'States.HeartbeatTimeout'
      ? `The guest agent went silent during the backup${heard}.`
      : input.error.Error === 'States.Timeout'
        ? `The guest agent did not finish the backup in time${heard}.`
        : (input.error.Cause ?? input.error.Error ?? 'The backup failed.');
  await updateBackup(
    input.project_id,
    backup.id,
    { status: 'FAILED', fault: reason, failed_at: troveTime() },
    ['NEW', 'BUILDING'],
  );
  const aborted = await abortOpenUploads(backup).catch((err: Error) => {
    logger.error('could not abort the backup upload', { backup_id: backup.id, error: err });
    throw err;
  });
  if (aborted) logger.info('aborted open uploads of a failed backup', { backup_id: backup.id, aborted });
  await finishBackupOnInstance(input.project_id, input.instance_id, input.backup_id);
  return {};
}
