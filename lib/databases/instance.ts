import { config } from '../config.ts';
import { NotImplemented, UnprocessableEntity } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';
import { loadInstance } from '../instances/operations.ts';
import { deriveStatus } from '../instances/status.ts';

/**
 * Trove's load_and_verify for the database, user and root routes: the instance must exist in the
 * caller's project, its datastore must support the operation, and its database must be up.
 */
export async function loadReadyInstance(
  projectId: string,
  id: string,
  { redis }: { redis: 'root' | 'unsupported' },
): Promise<InstanceItem> {
  const item = await loadInstance(projectId, id);
  const manager = item.datastore.manager;
  if (manager === 'redis' && redis === 'unsupported') {
    throw new NotImplemented(`Users and databases are not supported for datastore ${item.datastore.type}.`);
  }
  if (!['mysql', 'mariadb', 'postgresql', 'redis'].includes(manager)) {
    throw new UnprocessableEntity(`Operation not supported for datastore ${item.datastore.type}.`);
  }
  const derived = deriveStatus(item, new Date(), config.heartbeatExpirySeconds);
  // Not while it builds, nor while an admin rebuilds it (Trove's rebuild sets BUILDING).
  const building = item.task_status === 'BUILDING' || item.task_status === 'REBUILDING';
  if (!['running', 'healthy'].includes(derived.service_status) || building) {
    throw new UnprocessableEntity(`Instance ${item.id} is not ready, status: ${derived.status}.`);
  }
  return item;
}
