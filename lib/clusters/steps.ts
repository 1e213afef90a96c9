import { computeDriver } from '../compute/index.ts';
import type { InstanceItem } from '../instances/model.ts';
import { deleteInstance } from '../instances/operations.ts';
import { updateInstance } from '../instances/repository.ts';
import { faultOf } from '../instances/steps.ts';
import { clusterAccessOf } from './access.ts';
import type { ClusterItem } from './model.ts';
import { ClusterPending } from './redis.ts';
import { deleteClusterItem, getCluster, membersOf, setClusterTask } from './repository.ts';
import { checkServing, strategyOf } from './strategy.ts';

// The steps of the cluster workflows (statemachines/cluster-*.asl.yml). Each is idempotent.

export interface ClusterStepInput {
  project_id: string;
  cluster_id: string;
}

/** The cluster is gone, or no longer in the task this workflow works for: the end of the road. */
export class ClusterGone extends Error {
  override name = 'Troveless.ClusterGone';
}

/** A member that will never be ready: the build fails at once rather than waiting it out. */
export class ClusterMemberFailed extends Error {
  override name = 'Troveless.ClusterMemberFailed';
}

async function clusterIn(input: ClusterStepInput, task: ClusterItem['task']): Promise<ClusterItem> {
  const cluster = await getCluster(input.project_id, input.cluster_id);
  if (!cluster || cluster.task !== task)
    throw new ClusterGone(`cluster ${input.cluster_id} is no longer ${task}`);
  return cluster;
}

/** Members in the cluster's order; a member that is gone fails the build. */
async function allMembers(cluster: ClusterItem): Promise<InstanceItem[]> {
  const members = await membersOf(cluster);
  if (members.length !== cluster.instance_ids.length)
    throw new ClusterMemberFailed(`A member of cluster ${cluster.id} is gone.`);
  return members;
}

/**
 * Trove's _all_instances_ready: pending while any member builds, failed as soon as one ended in
 * error (its own fault says why), done when every member's create workflow has marked it ready.
 */
export async function membersReady(input: ClusterStepInput) {
  const cluster = await clusterIn(input, 'BUILDING');
  const members = await allMembers(cluster);
  const failed = members.find((m) => m.task_status.startsWith('BUILDING_ERROR'));
  if (failed)
    throw new ClusterMemberFailed(
      `Member ${failed.id} failed to build: ${failed.fault?.message ?? failed.task_status}.`,
    );
  const building = members.filter((m) => m.task_status === 'BUILDING');
  if (building.length)
    throw new ClusterPending(`${building.length} of ${members.length} members are still building.`);
  return {};
}

/** Every member may reach every other's engine and cluster bus ports (the firewall's peers). */
export async function connectMembers(input: ClusterStepInput) {
  const cluster = await clusterIn(input, 'BUILDING');
  const members = await allMembers(cluster);
  for (const member of members)
    if (member.server_id)
      await computeDriver().applyAccess(member.server_id, clusterAccessOf(member, members));
  return {};
}

export async function formCluster(input: ClusterStepInput) {
  const cluster = await clusterIn(input, 'BUILDING');
  await strategyOf(cluster).form(await allMembers(cluster));
  return {};
}

/** Pending (the workflow asks again) until every member sees the whole cluster, state ok. */
export async function clusterFormed(input: ClusterStepInput) {
  const cluster = await clusterIn(input, 'BUILDING');
  await checkServing(cluster, await allMembers(cluster));
  return {};
}

export async function markClusterReady(input: ClusterStepInput) {
  await setClusterTask({ project_id: input.project_id, id: input.cluster_id }, 'NONE', ['BUILDING']);
  return {};
}

/**
 * Trove's update_statuses_on_failure: every member still there shows the build's error with
 * its fault (BUILDING_ERROR_SERVER), and the cluster's task is reset so that it can be deleted.
 */
export async function failClusterBuild(
  input: ClusterStepInput & { error: { Error?: string; Cause?: string } },
) {
  const cluster = await getCluster(input.project_id, input.cluster_id);
  if (cluster?.task !== 'BUILDING') return {};
  const fault = faultOf(input.error);
  for (const member of await membersOf(cluster)) {
    await updateInstance(member.project_id, member.id, {
      set: { task_status: 'BUILDING_ERROR_SERVER', fault: member.fault ?? fault },
      condition: { expression: 'task_status <> :deleting', values: { ':deleting': 'DELETING' } },
    });
  }
  await setClusterTask(cluster, 'NONE', ['BUILDING']);
  return {};
}

/** Each member goes through the instance delete path (quota, server, queue, item). */
export async function deleteMembers(input: ClusterStepInput) {
  const cluster = await clusterIn(input, 'DELETING');
  for (const member of await membersOf(cluster)) await deleteInstance(member.project_id, member.id);
  return {};
}

export async function membersGone(input: ClusterStepInput) {
  const cluster = await clusterIn(input, 'DELETING');
  const left = await membersOf(cluster);
  if (left.length) throw new ClusterPending(`${left.length} members are still being deleted.`);
  return {};
}

export async function forgetCluster(input: ClusterStepInput) {
  await deleteClusterItem(input.project_id, input.cluster_id);
  return {};
}
