import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { config } from '../config.ts';
import { unwrapKey } from '../guest/keys.ts';
import { decryptWith } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';
import { findInstance, getInstance, updateInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { s3Client } from '../s3.ts';
import type { ReplicationAccount } from './account.ts';
import { connectMembers, membersOf } from './members.ts';
import { orderAndWait } from './orders.ts';

// Trove's get_replication_snapshot (TROVE_API.md §9.2), as steps of a replica's create workflow:
// the source streams a full backup through the backup pipeline to an object of its own prefix,
// the replica's prepare restores it and follows the source from the position it holds; once the
// replica is ready (or failed) the object goes.

export interface ReplicaStepInput {
  project_id: string;
  instance_id: string;
}

/** Where a replica's snapshot is stored: under its source's prefix (the source's guest writes it). */
export function snapshotObjectKey(projectId: string, sourceId: string, replicaId: string): string {
  return `${projectId}/${sourceId}/replica-${replicaId}.snapshot.zst.enc`;
}

async function replicaOf(input: ReplicaStepInput): Promise<{ replica: InstanceItem; source: InstanceItem }> {
  const replica = await findInstance(input.instance_id);
  if (!replica || replica.project_id !== input.project_id || !replica.replica_of_id)
    throw new Error(`replica ${input.instance_id} is gone`);
  const source = await getInstance(replica.project_id, replica.replica_of_id);
  if (!source) throw new Error(`the source ${replica.replica_of_id} of replica ${replica.id} is gone`);
  return { replica, source };
}

interface ReplicaPrepare {
  restore: { bucket: string; key: string; data_key: string }[];
  account: ReplicationAccount;
}

/** Orders the source's guest to take the snapshot; the workflow waits for its size and checksum. */
export async function takeSnapshot(input: ReplicaStepInput & { task_token: string; execution_id?: string }) {
  const { replica, source } = await replicaOf(input);
  if (!replica.sealed_prepare) throw new Error(`replica ${replica.id} has nothing left to prepare`);
  const sealed = decryptWith(await unwrapKey(replica.wrapped_key), replica.sealed_prepare) as ReplicaPrepare;
  const [object] = sealed.restore;
  if (!object) throw new Error(`replica ${replica.id} has no snapshot to restore`);
  return orderSnapshot(source, replica.id, object, sealed.account, {
    task_token: input.task_token,
    execution_id: input.execution_id,
  });
}

/**
 * Orders `source`'s guest to stream a snapshot for `replicaId` to `object` (a replica's create,
 * or a re-seed: lib/replication/reseed.ts); the step waits for its size and checksum.
 */
export function orderSnapshot(
  source: InstanceItem,
  replicaId: string,
  object: { bucket: string; key: string; data_key: string },
  account: ReplicationAccount,
  step: { task_token: string; execution_id?: string; tag?: string },
) {
  return orderAndWait(
    source,
    'get_replication_snapshot',
    { bucket: object.bucket, key: object.key, replica_id: replicaId },
    // The data key and the set's account reach the source sealed with its own key.
    { ...step, secrets: { data_key: object.data_key, account } },
  );
}

/**
 * The snapshot is taken: its checksum is recorded for the replica's prepare, and every member of
 * the set may now reach the others' engine ports (the replica is about to connect to its source).
 */
export async function joinReplicaSet(
  input: ReplicaStepInput & { snapshot: { size_bytes: number; checksum: string } },
) {
  const { replica } = await replicaOf(input);
  await updateInstance(replica.project_id, replica.id, {
    set: {
      replication_snapshot: { checksum: input.snapshot.checksum, size_bytes: input.snapshot.size_bytes },
    },
  });
  await connectMembers(await membersOf(replica));
  return {};
}

/** The snapshot object goes once the replica was built (or could not be). Safe to repeat. */
export async function removeSnapshot(item: InstanceItem): Promise<void> {
  if (!item.replica_of_id) return;
  const key = snapshotObjectKey(item.project_id, item.replica_of_id, item.id);
  await s3Client()
    .send(new DeleteObjectCommand({ Bucket: config.backupBucket, Key: key }))
    .catch((err: Error) => logger.warn('could not remove a replica snapshot', { key, error: err }));
}
