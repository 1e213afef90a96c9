import { z } from 'zod';
import { loadVersions } from '../catalog/store.ts';
import { type DatastoreVersion, datastoreRefOf } from '../catalog/types.ts';
import { configurationForVersion } from '../configurations/repository.ts';
import { BadRequest, UnprocessableEntity } from '../errors.ts';
import { upgradeRefusalFor } from '../instances/upgrade-rules.ts';
import { idRef, validate } from '../validation.ts';
import { startWorkflow, type Workflow } from '../workflows.ts';
import type { ClusterItem, ClusterTaskName, RollingRecord } from './model.ts';
import { getCluster, setClusterTask } from './repository.ts';

// Trove's rolling cluster actions (trove/cluster/models.py rolling_restart, rolling_upgrade,
// rolling_configuration_update): the request checked, the cluster's task set, and a workflow
// (statemachines/cluster-{restart,upgrade,configuration}.asl.yml, lib/clusters/rolling-steps.ts)
// takes one member at a time through the instance path, waiting for it and for the whole cluster
// to be healthy before the next. Nothing is written when the request is refused.

export const RestartRequest = z.union([z.looseObject({}), z.null()]);
export const UpgradeRequest = z.looseObject({ datastore_version: idRef() });
export const ConfigurationAttachRequest = z.looseObject({ configuration_id: idRef() });
export const ConfigurationDetachRequest = z.union([z.looseObject({}), z.null()]);

/** Trove's validate_cluster_available (same message as the delete's). */
function notAvailable(cluster: ClusterItem): UnprocessableEntity {
  return new UnprocessableEntity(
    `This action cannot be performed on the cluster while the current cluster task is '${cluster.task}'.`,
  );
}

const WORKFLOWS: Record<RollingRecord['action'], { task: ClusterTaskName; workflow: Workflow }> = {
  restart: { task: 'RESTARTING_CLUSTER', workflow: 'cluster-restart' },
  upgrade: { task: 'UPGRADING_CLUSTER', workflow: 'cluster-upgrade' },
  configuration_attach: { task: 'UPDATING_CLUSTER', workflow: 'cluster-configuration' },
  configuration_detach: { task: 'UPDATING_CLUSTER', workflow: 'cluster-configuration' },
};

/** The task a rolling action runs under. */
export const rollingTask = (action: RollingRecord['action']) => WORKFLOWS[action].task;

/**
 * Claims the cluster (its task NONE → the action's) with the rolling record, then starts the
 * workflow; a workflow that cannot start gives the cluster back, so no task is left that nothing
 * will end.
 */
async function startRolling(
  cluster: ClusterItem,
  action: RollingRecord['action'],
  extra: Partial<RollingRecord> = {},
): Promise<ClusterItem> {
  if (cluster.task !== 'NONE') throw notAvailable(cluster);
  const { task, workflow } = WORKFLOWS[action];
  // Execution names are at most 80 characters: the cluster id and the time keep them unique.
  const execution = `${action.replace('configuration_', 'config-')}-${cluster.id}-${Date.now()}`;
  const rolling: RollingRecord = { action, execution, done: [], ...extra };
  if (!(await setClusterTask(cluster, task, ['NONE'], { rolling })))
    throw notAvailable((await getCluster(cluster.project_id, cluster.id)) ?? cluster);
  try {
    await startWorkflow(workflow, execution, {
      project_id: cluster.project_id,
      cluster_id: cluster.id,
      execution,
    });
  } catch (err) {
    await setClusterTask(cluster, 'NONE', [task]);
    throw err;
  }
  return { ...cluster, task, rolling };
}

export async function restartCluster(cluster: ClusterItem, body: unknown): Promise<ClusterItem> {
  validate(RestartRequest, body ?? {});
  return startRolling(cluster, 'restart');
}

/**
 * The version asked for, among the cluster's datastore's versions (by id or name): anything else
 * is a 400 here, as Trove's DatastoreVersion.load(cluster's datastore, ...), never a 404.
 */
export function clusterTargetVersion(
  versions: DatastoreVersion[],
  cluster: Pick<ClusterItem, 'datastore'>,
  ref: string,
): DatastoreVersion {
  const own = versions.filter((v) => v.datastore_name === cluster.datastore.type);
  const byId = own.find((v) => v.id === ref);
  const named = own.filter((v) => v.name === ref);
  const target = byId ?? (named.length === 1 ? named[0] : undefined);
  if (!target)
    throw new BadRequest(
      named.length > 1
        ? `Datastore version '${ref}' names several versions of datastore '${cluster.datastore.type}': give its id.`
        : `Datastore version '${ref}' is not a version of datastore '${cluster.datastore.type}'.`,
    );
  if (target.id === cluster.datastore.version_id)
    throw new BadRequest(`The cluster already runs datastore version '${target.name}'.`);
  return target;
}

/** The cluster's rule for a new version: the instance upgrade's (each member takes that path). */
export function clusterUpgradeRefusal(
  versions: DatastoreVersion[],
  cluster: Pick<ClusterItem, 'datastore'>,
  target: DatastoreVersion,
): string | undefined {
  const refusal = upgradeRefusalFor(versions, cluster.datastore, target);
  return refusal?.replace('The instance already runs', 'The cluster already runs');
}

export async function upgradeCluster(cluster: ClusterItem, body: unknown): Promise<ClusterItem> {
  const request = validate(UpgradeRequest, body);
  const versions = await loadVersions();
  const target = clusterTargetVersion(versions, cluster, request.datastore_version);
  const refusal = clusterUpgradeRefusal(versions, cluster, target);
  if (refusal) throw new BadRequest(refusal);
  if (cluster.task !== 'NONE') throw notAvailable(cluster);
  return startRolling(cluster, 'upgrade', {
    to: datastoreRefOf(target),
  });
}

/** Trove's configuration_attach: one group for the cluster, of its version, on every member. */
export async function attachClusterConfiguration(cluster: ClusterItem, body: unknown): Promise<ClusterItem> {
  const request = validate(ConfigurationAttachRequest, body);
  if (cluster.configuration_id)
    throw new BadRequest(
      `Cluster ${cluster.id} already has a Configuration Group attached: ${cluster.configuration_id}.`,
    );
  await configurationForVersion(cluster.project_id, request.configuration_id, {
    id: cluster.datastore.version_id,
    name: cluster.datastore.version,
  });
  return startRolling(cluster, 'configuration_attach', { configuration_id: request.configuration_id });
}

/** Trove's configuration_detach: the group comes off every member. */
export async function detachClusterConfiguration(cluster: ClusterItem, body: unknown): Promise<ClusterItem> {
  validate(ConfigurationDetachRequest, body ?? {});
  if (!cluster.configuration_id)
    throw new BadRequest(`Cluster ${cluster.id} has no Configuration Group attached.`);
  return startRolling(cluster, 'configuration_detach');
}
