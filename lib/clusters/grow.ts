import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest } from '../errors.ts';
import { startBuild } from '../instances/build.ts';
import type { InstanceItem } from '../instances/model.ts';
import { putNewInstances } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { validate } from '../validation.ts';
import { startWorkflow } from '../workflows.ts';
import { clusterBusy } from './available.ts';
import { memberQuota, memberSpecs, newMember } from './members.ts';
import type { ClusterItem } from './model.ts';
import { assignRoles } from './replicas.ts';
import { getCluster, membersOf } from './repository.ts';
import { GrowRequest } from './resize-schemas.ts';
import { failResize } from './resize-steps.ts';
import { strategyOf } from './strategy.ts';

/**
 * Trove's Cluster.grow (its redis strategy's): new members, each an instance of the cluster's
 * datastore version with its own flavor and volume, counted against the project's quotas. The
 * members, their quota, the cluster's new member list and its GROWING_CLUSTER task are written
 * in one transaction, or nothing is; then each member builds through the instance create
 * workflow and the cluster-grow workflow brings them into the cluster.
 */
export async function growCluster(cluster: ClusterItem, body: unknown): Promise<ClusterItem> {
  const nodes = validate(GrowRequest, { grow: body }).grow;
  const strategy = strategyOf(cluster);
  if (!strategy.addMembers) throw new BadRequest("Action 'grow' not supported");
  if (cluster.task !== 'NONE') throw clusterBusy(cluster);
  const specs = await memberSpecs(nodes);
  const common = {
    project_id: cluster.project_id,
    cluster_id: cluster.id,
    datastore: cluster.datastore,
    now: troveTime(),
    locality: cluster.locality,
    configuration_id: cluster.configuration_id,
  };
  const now = common.now;
  const built: InstanceItem[] = [];
  // Numbered on from the members the cluster has, as its create numbers them.
  for (const [i, spec] of specs.entries())
    built.push(
      await newMember(
        common,
        spec,
        spec.name ?? `${cluster.name}-member-${cluster.instance_ids.length + i + 1}`,
      ),
    );
  // A replica's related_to names a new member or an existing one (Trove's grow), by name or id.
  const members = assignRoles(built, nodes, await membersOf(cluster), {
    replicasSupported: strategy.replicas === true,
    manager: cluster.datastore.manager,
  });
  const quota = await memberQuota(cluster.project_id, specs);
  const added = members.map((m) => m.id);
  try {
    await putNewInstances(members, quota, [
      {
        Update: {
          TableName: config.clustersTable,
          Key: { project_id: cluster.project_id, id: cluster.id },
          UpdateExpression:
            'SET instance_ids = list_append(instance_ids, :added), #task = :growing, updated = :now',
          ConditionExpression: 'attribute_exists(id) AND #task = :none',
          ExpressionAttributeNames: { '#task': 'task' },
          ExpressionAttributeValues: {
            ':added': added,
            ':growing': 'GROWING_CLUSTER',
            ':none': 'NONE',
            ':now': now,
          },
        },
      },
    ]);
  } catch (err) {
    // Another request changed the cluster's task first (or deleted it): nothing was written.
    if ((err as Error).name === 'TransactionCanceledException')
      throw clusterBusy((await getCluster(cluster.project_id, cluster.id)) ?? cluster);
    throw err;
  }
  const grown: ClusterItem = {
    ...cluster,
    task: 'GROWING_CLUSTER',
    updated: now,
    instance_ids: [...cluster.instance_ids, ...added],
  };
  for (const member of members) await startBuild(member);
  const input = { project_id: cluster.project_id, cluster_id: cluster.id, added };
  try {
    await startWorkflow('cluster-grow', `grow-${cluster.id}-${Date.now()}`, input);
  } catch (err) {
    // Nothing would bring the new members in: they say so, and the cluster is usable again.
    logger.error('cluster grow workflow did not start', { cluster_id: cluster.id, error: err as Error });
    await failResize({ ...input, error: { Error: 'WorkflowNotStarted', Cause: String(err) } }, 'grow');
    grown.task = 'NONE';
  }
  return grown;
}
