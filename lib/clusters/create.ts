import { randomUUID } from 'node:crypto';
import { resolveDatastoreVersion } from '../catalog/index.ts';
import { datastoreRefOf } from '../catalog/types.ts';
import { config } from '../config.ts';
import { configurationForVersion } from '../configurations/repository.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, NotImplemented } from '../errors.ts';
import { startBuild } from '../instances/build.ts';
import type { InstanceItem } from '../instances/model.ts';
import { configurationIdOf } from '../instances/operations.ts';
import { putNewInstances, updateInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { startWorkflow } from '../workflows.ts';
import { memberQuota, memberSpecs, newMember } from './members.ts';
import type { ClusterItem } from './model.ts';
import { assignRoles } from './replicas.ts';
import { setClusterTask } from './repository.ts';
import type { CreateClusterRequest } from './schemas.ts';
import { strategyFor } from './strategy.ts';

/**
 * Trove's Cluster.create with its redis strategy's checks: every member an instance of the same
 * datastore version with its own flavor and volume, all counted against the project's quotas.
 * The members, their quota and the cluster are written in one transaction, or nothing is; then
 * each member's build starts through the instance create workflow, and the cluster's workflow
 * waits for them and forms the cluster.
 */
export async function createCluster(
  projectId: string,
  req: CreateClusterRequest,
): Promise<{
  cluster: ClusterItem;
  members: InstanceItem[];
}> {
  const { datastore, version } = await resolveDatastoreVersion(req.datastore);
  const strategy = strategyFor(version.manager);
  if (strategy === undefined)
    throw new NotImplemented(`Clusters not supported for ${datastore.name}-${version.name}.`);
  const minimum = strategy.minMembers;
  // Replicas serve no slots of their own: the minimum counts masters.
  const masters = req.instances.filter((i) => ![i.type ?? []].flat().includes('replica')).length;
  if (masters < minimum)
    throw new BadRequest(`The number of instances for your initial cluster must be at least ${minimum}.`);
  const specs = await memberSpecs(req.instances);
  let configurationId: string | undefined;
  if (req.configuration) {
    const group = await configurationForVersion(projectId, configurationIdOf(req.configuration), version);
    configurationId = group.id;
  }

  const now = troveTime();
  const clusterId = randomUUID();
  const dsRef: InstanceItem['datastore'] = datastoreRefOf(version);
  const common = {
    project_id: projectId,
    cluster_id: clusterId,
    datastore: dsRef,
    now,
    locality: req.locality,
    configuration_id: configurationId,
  };
  const built: InstanceItem[] = [];
  // Trove names members after their cluster (a replica's related_to may name one so).
  for (const [i, spec] of specs.entries())
    built.push(await newMember(common, spec, spec.name ?? `${req.name}-member-${i + 1}`));
  const members = assignRoles(built, req.instances, [], {
    replicasSupported: strategy.replicas === true,
    manager: version.manager,
  });
  // After the members' roles: a request Redis Cluster cannot form is a 400 whatever the quota.
  const quota = await memberQuota(projectId, specs);
  const cluster: ClusterItem = {
    project_id: projectId,
    id: clusterId,
    name: req.name,
    created: now,
    updated: now,
    task: 'BUILDING',
    datastore: dsRef,
    instance_ids: members.map((m) => m.id),
    ...(req.locality ? { locality: req.locality } : {}),
    ...(configurationId ? { configuration_id: configurationId } : {}),
    create_execution: clusterId,
  };

  await putNewInstances(members, quota, [
    {
      Put: {
        TableName: config.clustersTable,
        Item: cluster,
        ConditionExpression: 'attribute_not_exists(id)',
      },
    },
  ]);

  for (const member of members) await startBuild(member);
  await startClusterBuild(cluster, members);
  return { cluster, members };
}

/**
 * The cluster's own workflow. If it cannot start, nothing would ever form the cluster: the
 * members say so with a fault (Trove's update_statuses_on_failure) and the task is reset, so the
 * cluster can be deleted.
 */
async function startClusterBuild(cluster: ClusterItem, members: InstanceItem[]): Promise<void> {
  try {
    await startWorkflow('cluster-create', cluster.id, {
      project_id: cluster.project_id,
      cluster_id: cluster.id,
    });
  } catch (err) {
    logger.error('cluster create workflow did not start', { cluster_id: cluster.id, error: err as Error });
    const fault = {
      message: 'The cluster workflow could not be started.',
      created: troveTime(),
      details: String(err),
    };
    for (const m of members)
      await updateInstance(m.project_id, m.id, { set: { task_status: 'BUILDING_ERROR_SERVER', fault } });
    await setClusterTask(cluster, 'NONE', ['BUILDING']);
    cluster.task = 'NONE';
  }
}
