import { BadRequest, NotImplemented } from '../errors.ts';
import { ejectReplicaSource, promoteToReplicaSource } from '../replication/actions.ts';
import { resetStatus, restartInstance } from './operations.ts';
import { getInstance } from './repository.ts';
import { resizeInstance } from './resize.ts';
import type { ActionRequest } from './schemas.ts';

/**
 * Trove's `POST /instances/{id}/action`: the first recognised key picks the action.
 */
export async function instanceAction(
  asker: { projectId: string; isAdmin: boolean },
  id: string,
  body: ActionRequest,
): Promise<void> {
  // Trove's ClusterInstanceOperationNotSupported: a member changes with its cluster, except an
  // admin's restart and any reset_status.
  const clusterRule = body.restart !== undefined ? !asker.isAdmin : body.reset_status === undefined;
  if (clusterRule && (await getInstance(asker.projectId, id))?.cluster_id)
    throw new NotImplemented('Operation not supported for instances that are part of a cluster.');
  if (body.restart !== undefined) return restartInstance(asker.projectId, id);
  if (body.reset_status !== undefined) return resetStatus(asker.projectId, id, asker.isAdmin);
  if (body.promote_to_replica_source !== undefined) return promoteToReplicaSource(asker.projectId, id);
  if (body.eject_replica_source !== undefined) return ejectReplicaSource(asker.projectId, id);
  if (body.resize !== undefined) return resizeInstance(asker.projectId, id, body.resize);
  throw new BadRequest('Invalid request body: no recognised action.');
}
