import { BadRequest, Forbidden, NotFound, UnprocessableEntity } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';
import { resetStatus as resetInstanceStatus } from '../instances/operations.ts';
import { getInstance } from '../instances/repository.ts';
import { validate } from '../validation.ts';
import { startWorkflow, stopWorkflow, workflowRunning } from '../workflows.ts';
import { growCluster } from './grow.ts';
import type { ClusterItem } from './model.ts';
import { getCluster, setClusterTask } from './repository.ts';
import { ResetStatusRequest } from './schemas.ts';
import { shrinkCluster } from './shrink.ts';

export async function loadCluster(projectId: string, id: string): Promise<ClusterItem> {
  const cluster = await getCluster(projectId, id);
  if (!cluster) throw new NotFound(`Cluster '${id}' cannot be found.`);
  return cluster;
}

/** `GET /clusters/{id}/instances/{iid}`: a member of this cluster, never another instance. */
export async function loadMember(
  projectId: string,
  clusterId: string,
  instanceId: string,
): Promise<InstanceItem> {
  const cluster = await loadCluster(projectId, clusterId);
  const member = cluster.instance_ids.includes(instanceId)
    ? await getInstance(projectId, instanceId)
    : undefined;
  if (!member || member.cluster_id !== cluster.id)
    throw new NotFound(`Instance '${instanceId}' cannot be found.`);
  return member;
}

/** Trove's validate_cluster_available: its message, a 422. */
function notAvailable(cluster: ClusterItem): UnprocessableEntity {
  return new UnprocessableEntity(
    `This action cannot be performed on the cluster while the current cluster task is '${cluster.task}'.`,
  );
}

/**
 * Trove's cluster delete: allowed with no task or a delete under way. The task becomes DELETING
 * (which lets the members' own deletes through), and the cluster-delete workflow deletes each
 * member through the instance delete path, waits for them to be gone, then forgets the cluster.
 * A delete whose workflow ended without finishing starts it again.
 */
export async function deleteCluster(projectId: string, id: string): Promise<void> {
  const cluster = await loadCluster(projectId, id);
  if (cluster.task === 'DELETING') {
    const previous = cluster.delete_execution ?? `delete-${id}`;
    if (await workflowRunning('cluster-delete', previous)) return;
  } else if (cluster.task !== 'NONE') {
    throw notAvailable(cluster);
  }
  // Execution names are never reused: the time keeps a repeated delete's new (at most 80 chars).
  const execution = `delete-${id}-${Date.now()}`;
  const marked = await setClusterTask(cluster, 'DELETING', ['NONE', 'DELETING'], {
    delete_execution: execution,
  });
  if (!marked) throw notAvailable((await getCluster(projectId, id)) ?? cluster);
  await startWorkflow('cluster-delete', execution, { project_id: projectId, cluster_id: id });
}

/**
 * Trove's cluster reset-status (admin): the task goes back to NONE and so does every member's,
 * as Trove resets them; a create workflow still running is stopped first, so it cannot form a
 * cluster behind the reset. Members whose build was cut short then delete like any reset build.
 */
export async function resetClusterStatus(cluster: ClusterItem, isAdmin: boolean): Promise<void> {
  if (!isAdmin) throw new Forbidden("Policy doesn't allow cluster:reset-status to be performed.");
  if (cluster.task === 'BUILDING' && (await workflowRunning('cluster-create', cluster.id)))
    await stopWorkflow('cluster-create', cluster.id, 'The cluster status was reset during its build.');
  if (cluster.task !== 'NONE') await setClusterTask(cluster, 'NONE', [cluster.task]);
  for (const id of cluster.instance_ids) {
    const member = await getInstance(cluster.project_id, id);
    if (member && member.task_status !== 'DELETING') await resetInstanceStatus(cluster.project_id, id, true);
  }
  cluster.task = 'NONE';
}

/** One cluster action: its body (the value of its key), the cluster, whether the caller is admin. */
type ClusterActionHandler = (cluster: ClusterItem, body: unknown, isAdmin: boolean) => Promise<ClusterItem>;

/** The actions Troveless's clusters take, by Trove's key. */
const ACTIONS: Record<string, ClusterActionHandler> = {
  'reset-status': async (cluster, body, isAdmin) => {
    validate(ResetStatusRequest, body ?? {});
    await resetClusterStatus(cluster, isAdmin);
    return cluster;
  },
  grow: (cluster, body) => growCluster(cluster, body),
  shrink: (cluster, body) => shrinkCluster(cluster, body),
};

/**
 * `POST /clusters/{id}`: exactly one action key; an action Troveless's strategies do not take is
 * Trove's 400 for an action the datastore's strategy does not support.
 */
export async function clusterAction(
  projectId: string,
  id: string,
  body: unknown,
  isAdmin: boolean,
): Promise<ClusterItem> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new BadRequest('Invalid request body.');
  const keys = Object.keys(body);
  if (keys.length === 0) throw new BadRequest('Invalid request body.');
  if (keys.length > 1)
    throw new BadRequest('Action request should have exactly one action specified in body');
  const action = keys[0] as string;
  const cluster = await loadCluster(projectId, id);
  const handler = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
  if (!handler) throw new BadRequest(`Action ${action} not supported`);
  return handler(cluster, (body as Record<string, unknown>)[action], isAdmin);
}
