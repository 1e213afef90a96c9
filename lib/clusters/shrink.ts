import { BadRequest, NotFound } from '../errors.ts';
import { logger } from '../logger.ts';
import { validate } from '../validation.ts';
import { startWorkflow } from '../workflows.ts';
import { clusterBusy } from './available.ts';
import type { ClusterItem } from './model.ts';
import { masterCount, replicaLeftBehind } from './replicas.ts';
import { getCluster, membersOf, setClusterTask } from './repository.ts';
import { ShrinkRequest } from './resize-schemas.ts';
import { strategyOf } from './strategy.ts';

const TOO_FEW =
  'The number of instances in your cluster cannot safely be lowered below the current level based on your current fault-tolerance settings.';

/**
 * Which members leave, checked before anything is written: each a member of this cluster, once,
 * and never so many that fewer than the strategy's minimum remain (Trove's messages). Pure.
 */
export function leavingMembers(
  cluster: Pick<ClusterItem, 'instance_ids'>,
  ids: string[],
  minMembers: number,
): string[] {
  const leaving = [...new Set(ids)];
  if (leaving.length !== ids.length) throw new BadRequest('Each instance to remove may be listed only once.');
  const stranger = leaving.find((id) => !cluster.instance_ids.includes(id));
  if (stranger !== undefined) throw new NotFound(`Instance '${stranger}' cannot be found.`);
  const remaining = cluster.instance_ids.length - leaving.length;
  if (remaining < 1) throw new BadRequest('Must leave at least one instance in the cluster when shrinking.');
  if (remaining < minMembers) throw new BadRequest(TOO_FEW);
  return leaving;
}

/**
 * Trove's Cluster.shrink: the task becomes SHRINKING_CLUSTER (which lets the leaving members'
 * own deletes through), and the cluster-shrink workflow takes them out of the engine's cluster
 * (their data moved to the remaining members first), deletes them through the instance delete
 * path and drops them from the member list.
 */
export async function shrinkCluster(cluster: ClusterItem, body: unknown): Promise<ClusterItem> {
  const ids = validate(ShrinkRequest, { shrink: body }).shrink.map((m) => m.id);
  const strategy = strategyOf(cluster);
  if (!strategy.removeMembers) throw new BadRequest("Action 'shrink' not supported");
  if (cluster.task !== 'NONE') throw clusterBusy(cluster);
  const leaving = leavingMembers(cluster, ids, strategy.minMembers);
  const members = await membersOf(cluster);
  const refusal = replicaLeftBehind(members, leaving);
  if (refusal) throw new BadRequest(refusal);
  // Replicas serve no slots: the masters that remain must still be enough.
  if (masterCount(members.filter((m) => !leaving.includes(m.id))) < strategy.minMembers)
    throw new BadRequest(TOO_FEW);
  const marked = await setClusterTask(cluster, 'SHRINKING_CLUSTER', ['NONE']);
  if (!marked) throw clusterBusy((await getCluster(cluster.project_id, cluster.id)) ?? cluster);
  const input = { project_id: cluster.project_id, cluster_id: cluster.id, leaving };
  try {
    await startWorkflow('cluster-shrink', `shrink-${cluster.id}-${Date.now()}`, input);
  } catch (err) {
    // Nothing was changed yet: the cluster is as it was, with no task.
    logger.error('cluster shrink workflow did not start', { cluster_id: cluster.id, error: err as Error });
    await setClusterTask(cluster, 'NONE', ['SHRINKING_CLUSTER']);
    throw err;
  }
  return { ...cluster, task: 'SHRINKING_CLUSTER' };
}
