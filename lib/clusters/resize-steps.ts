import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { computeDriver } from '../compute/index.ts';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import { NotFound } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';
import { deleteInstance } from '../instances/operations.ts';
import { updateInstance } from '../instances/repository.ts';
import { faultOf } from '../instances/steps.ts';
import { clusterAccessOf } from './access.ts';
import type { ClusterItem } from './model.ts';
import { ClusterPending } from './redis.ts';
import { getCluster, membersOf, setClusterTask } from './repository.ts';
import { ClusterGone, ClusterMemberFailed } from './steps.ts';
import { checkServing, strategyOf } from './strategy.ts';

// The steps of the cluster-grow and cluster-shrink workflows (statemachines/cluster-grow.asl.yml,
// cluster-shrink.asl.yml), engine-generic: the strategy's addMembers / removeMembers and check do
// the engine's part. Each step is idempotent (workflows retry them).

export interface GrowInput {
  project_id: string;
  cluster_id: string;
  /** The new members, already in the cluster's instance_ids. */
  added: string[];
}

export interface ShrinkInput {
  project_id: string;
  cluster_id: string;
  /** The members that leave (still in instance_ids until they are deleted). */
  leaving: string[];
}

async function clusterIn(input: { project_id: string; cluster_id: string }, task: ClusterItem['task']) {
  const cluster = await getCluster(input.project_id, input.cluster_id);
  if (!cluster || cluster.task !== task)
    throw new ClusterGone(`cluster ${input.cluster_id} is no longer ${task}`);
  return cluster;
}

/** Every member that exists, and the ones of `ids` among them. */
async function split(cluster: ClusterItem, ids: string[]) {
  const members = await membersOf(cluster);
  return {
    members,
    these: members.filter((m) => ids.includes(m.id)),
    others: members.filter((m) => !ids.includes(m.id)),
  };
}

/** Pending while a new member builds; failed at once when one ended in error or is gone. */
export async function grownMembersReady(input: GrowInput) {
  const cluster = await clusterIn(input, 'GROWING_CLUSTER');
  const { these: added } = await split(cluster, input.added);
  if (added.length !== input.added.length)
    throw new ClusterMemberFailed(`A new member of cluster ${cluster.id} is gone.`);
  const failed = added.find((m) => m.task_status.startsWith('BUILDING_ERROR'));
  if (failed)
    throw new ClusterMemberFailed(
      `Member ${failed.id} failed to build: ${failed.fault?.message ?? failed.task_status}.`,
    );
  const building = added.filter((m) => m.task_status === 'BUILDING');
  if (building.length)
    throw new ClusterPending(`${building.length} of ${added.length} new members are still building.`);
  return {};
}

/** Every member (old and new) may reach every other's engine and peer ports. */
export async function connectGrown(input: GrowInput) {
  const cluster = await clusterIn(input, 'GROWING_CLUSTER');
  const { members } = await split(cluster, input.added);
  for (const member of members)
    if (member.server_id)
      await computeDriver().applyAccess(member.server_id, clusterAccessOf(member, members));
  return {};
}

export async function addGrownMembers(input: GrowInput) {
  const cluster = await clusterIn(input, 'GROWING_CLUSTER');
  const { these: added, others: existing } = await split(cluster, input.added);
  const addMembers = strategyOf(cluster).addMembers;
  if (!addMembers) throw new Error(`${cluster.datastore.manager} clusters cannot grow`);
  await addMembers(existing, added);
  return {};
}

/** Pending until every member, old and new, sees the whole grown cluster (the strategy says). */
export async function checkGrown(input: GrowInput) {
  const cluster = await clusterIn(input, 'GROWING_CLUSTER');
  await checkServing(cluster, (await split(cluster, input.added)).members);
  return {};
}

export async function markGrown(input: GrowInput) {
  await setClusterTask({ project_id: input.project_id, id: input.cluster_id }, 'NONE', ['GROWING_CLUSTER']);
  return {};
}

/** The engine's part of a shrink: the leaving members' data moves to the others, then they leave. */
export async function removeLeaving(input: ShrinkInput) {
  const cluster = await clusterIn(input, 'SHRINKING_CLUSTER');
  const { these: leaving, others: remaining } = await split(cluster, input.leaving);
  const removeMembers = strategyOf(cluster).removeMembers;
  if (!removeMembers) throw new Error(`${cluster.datastore.manager} clusters cannot shrink`);
  await removeMembers(remaining, leaving);
  return {};
}

/** Pending until the remaining members see a whole cluster of just themselves. */
export async function checkShrunk(input: ShrinkInput) {
  const cluster = await clusterIn(input, 'SHRINKING_CLUSTER');
  await checkServing(cluster, (await split(cluster, input.leaving)).others);
  return {};
}

/**
 * Each leaving member through the instance delete path (its quota, server, queue and item; the
 * cluster's SHRINKING_CLUSTER task lets a member's delete through), then out of instance_ids.
 */
export async function deleteLeaving(input: ShrinkInput) {
  const cluster = await clusterIn(input, 'SHRINKING_CLUSTER');
  for (const id of input.leaving) {
    try {
      await deleteInstance(cluster.project_id, id);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err; // already gone: nothing to delete
    }
  }
  const remaining = cluster.instance_ids.filter((id) => !input.leaving.includes(id));
  await documents.send(
    new UpdateCommand({
      TableName: config.clustersTable,
      Key: { project_id: cluster.project_id, id: cluster.id },
      UpdateExpression: 'SET instance_ids = :remaining, updated = :now',
      ConditionExpression: '#task = :shrinking',
      ExpressionAttributeNames: { '#task': 'task' },
      ExpressionAttributeValues: {
        ':remaining': remaining,
        ':now': troveTime(),
        ':shrinking': 'SHRINKING_CLUSTER',
      },
    }),
  );
  return {};
}

export async function markShrunk(input: ShrinkInput) {
  await setClusterTask({ project_id: input.project_id, id: input.cluster_id }, 'NONE', ['SHRINKING_CLUSTER']);
  return {};
}

/**
 * Trove's update_statuses_on_failure for a grow or shrink: the members it was about (the new
 * ones, or the leaving ones) show GROWING_ERROR / SHRINKING_ERROR with the step's fault, and the
 * cluster's task returns to NONE so that it can be used, shrunk or deleted. The engine's cluster
 * stays whole: a migration moves one slot at a time, each slot served by one member throughout.
 */
export async function failResize(
  input: (GrowInput | ShrinkInput) & { error: { Error?: string; Cause?: string } },
  action: 'grow' | 'shrink',
) {
  const cluster = await getCluster(input.project_id, input.cluster_id);
  const task = action === 'grow' ? 'GROWING_CLUSTER' : 'SHRINKING_CLUSTER';
  if (cluster?.task !== task) return {};
  const ids = 'added' in input ? input.added : input.leaving;
  const fault = faultOf(input.error);
  const affected: InstanceItem[] = (await split(cluster, ids)).these;
  for (const member of affected) {
    await updateInstance(member.project_id, member.id, {
      set: {
        task_status: action === 'grow' ? 'GROWING_ERROR' : 'SHRINKING_ERROR',
        fault: member.fault ?? fault,
      },
      condition: { expression: 'task_status <> :deleting', values: { ':deleting': 'DELETING' } },
    });
  }
  await setClusterTask(cluster, 'NONE', [task]);
  return {};
}

export const failGrow = (input: GrowInput & { error: { Error?: string; Cause?: string } }) =>
  failResize(input, 'grow');
export const failShrink = (input: ShrinkInput & { error: { Error?: string; Cause?: string } }) =>
  failResize(input, 'shrink');
