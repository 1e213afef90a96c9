import { UnprocessableEntity } from '../errors.ts';
import type { ClusterItem } from './model.ts';

/**
 * Trove's validate_cluster_available for grow and shrink: its message, a 422, whenever the
 * cluster already has a task (its own files, so these actions need nothing from operations.ts).
 */
export function clusterBusy(cluster: Pick<ClusterItem, 'task'>): UnprocessableEntity {
  return new UnprocessableEntity(
    `This action cannot be performed on the cluster while the current cluster task is '${cluster.task}'.`,
  );
}
