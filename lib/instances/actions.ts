import { BadRequest, NotImplemented } from '../errors.ts';
import { loadInstance, resetStatus, restartInstance } from './operations.ts';
import { resizeInstance } from './resize.ts';
import type { ActionRequest } from './schemas.ts';

/**
 * Trove's `POST /instances/{id}/action`: the first recognised key picks the action. The replica
 * actions are known but not built yet: 501 for an instance the caller has, 404 else.
 */
export async function instanceAction(
  asker: { projectId: string; isAdmin: boolean },
  id: string,
  body: ActionRequest,
): Promise<void> {
  if (body.restart !== undefined) return restartInstance(asker.projectId, id);
  if (body.reset_status !== undefined) return resetStatus(asker.projectId, id, asker.isAdmin);
  if (body.resize !== undefined) return resizeInstance(asker.projectId, id, body.resize);
  if (body.promote_to_replica_source !== undefined || body.eject_replica_source !== undefined) {
    await loadInstance(asker.projectId, id);
    throw new NotImplemented('This action is not supported yet.');
  }
  throw new BadRequest('Invalid request body: no recognised action.');
}
