import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { attachConfiguration, detachConfiguration } from '../configurations/service.ts';
import { documents, troveTime } from '../dynamo.ts';
import type { InstanceItem } from '../instances/model.ts';
import { restartInstance } from '../instances/operations.ts';
import { getInstance, updateInstance } from '../instances/repository.ts';
import { deriveStatus } from '../instances/status.ts';
import { faultOf } from '../instances/steps.ts';
import { upgradeInstance } from '../instances/upgrade.ts';
import type { ClusterItem, RollingRecord } from './model.ts';
import { ClusterPending } from './redis.ts';
import { getCluster, membersOf, setClusterTask } from './repository.ts';
import { rollingTask } from './rolling.ts';
import { ClusterGone, ClusterMemberFailed } from './steps.ts';
import { checkServing } from './strategy.ts';

// The steps of the rolling workflows (statemachines/cluster-{restart,upgrade,configuration}):
// NextMember → MemberSettled → ClusterHealthy → NextMember … → FinishRolling. Each step reads
// the cluster's rolling record and is safe to repeat: a member already done is never touched
// again, a member already in its action's task is not asked twice.

export interface RollingInput {
  project_id: string;
  cluster_id: string;
  execution: string;
}

type Rolling = ClusterItem & { rolling: RollingRecord };

/** The cluster, still under this execution's action; anything else ends the workflow. */
async function rollingCluster(input: RollingInput): Promise<Rolling> {
  const cluster = await getCluster(input.project_id, input.cluster_id);
  const rolling = cluster?.rolling;
  if (
    !cluster ||
    !rolling ||
    rolling.execution !== input.execution ||
    cluster.task !== rollingTask(rolling.action)
  )
    throw new ClusterGone(`cluster ${input.cluster_id} is no longer under ${input.execution}`);
  return cluster as Rolling;
}

async function saveRolling(cluster: Rolling, rolling: RollingRecord): Promise<void> {
  const task = rollingTask(rolling.action);
  if (!(await setClusterTask(cluster, task, [task], { rolling })))
    throw new ClusterGone(`cluster ${cluster.id} is no longer ${task}`);
}

/** The member's own task while the instance path works on it. */
const WORKING: Record<RollingRecord['action'], string | undefined> = {
  restart: 'REBOOTING',
  upgrade: 'UPGRADING',
  configuration_attach: undefined,
  configuration_detach: undefined,
};

/** Starts the action on one member through the instance path, unless it is already under way. */
async function actOn(member: InstanceItem, rolling: RollingRecord): Promise<void> {
  if (member.task_status === WORKING[rolling.action]) return;
  switch (rolling.action) {
    case 'restart':
      return restartInstance(member.project_id, member.id);
    case 'upgrade':
      if (member.datastore.version_id === rolling.to?.version_id) return;
      return upgradeInstance(member, rolling.to?.version_id ?? '');
    case 'configuration_attach':
      if (member.configuration_id === rolling.configuration_id) return;
      return attachConfiguration(member.project_id, member.id, rolling.configuration_id ?? '');
    case 'configuration_detach':
      return detachConfiguration(member.project_id, member.id);
  }
}

/** The first member not done yet gets the action; `member_id` null when every member is done. */
export async function nextMember(input: RollingInput) {
  const cluster = await rollingCluster(input);
  const { rolling } = cluster;
  const id = cluster.instance_ids.find((i) => !rolling.done.includes(i));
  if (!id) return { member_id: null };
  const member = await getInstance(cluster.project_id, id);
  if (!member) throw new ClusterMemberFailed(`Member ${id} of cluster ${cluster.id} is gone.`);
  // Recorded first, so that a failure to start shows on this member.
  if (rolling.current !== id) await saveRolling(cluster, { ...rolling, current: id });
  await actOn(member, rolling);
  return { member_id: id };
}

/**
 * Pending while the member is in its action's task or not yet running and healthy again; failed
 * when the instance path ended with a fault (it cleared any older one when it began), or when an
 * upgrade left the member on its old version.
 */
export async function memberSettled(input: RollingInput & { member_id: string }) {
  const { rolling } = await rollingCluster(input);
  const member = await getInstance(input.project_id, input.member_id);
  if (!member) throw new ClusterMemberFailed(`Member ${input.member_id} is gone.`);
  if (member.task_status === WORKING[rolling.action])
    throw new ClusterPending(`member ${member.id} is ${member.task_status}`);
  if (member.fault && ['restart', 'upgrade'].includes(rolling.action))
    throw new ClusterMemberFailed(`Member ${member.id}: ${member.fault.message}`);
  if (rolling.action === 'upgrade' && member.datastore.version_id !== rolling.to?.version_id)
    throw new ClusterMemberFailed(`Member ${member.id} was not upgraded to ${rolling.to?.version}.`);
  const { status, operating_status } = deriveStatus(member, new Date(), config.heartbeatExpirySeconds);
  if (status === 'ERROR') throw new ClusterMemberFailed(`Member ${member.id} is in ERROR.`);
  const running = (status === 'ACTIVE' && operating_status === 'HEALTHY') || status === 'RESTART_REQUIRED';
  if (!running) throw new ClusterPending(`member ${member.id} is ${status} ${operating_status}`);
  return {};
}

/** Every member sees the whole, healthy cluster (the strategy's check); then the member is done. */
export async function clusterHealthy(input: RollingInput & { member_id: string }) {
  const cluster = await rollingCluster(input);
  await checkServing(cluster, await membersOf(cluster));
  const { rolling } = cluster;
  if (!rolling.done.includes(input.member_id))
    await saveRolling(cluster, { ...rolling, done: [...rolling.done, input.member_id] });
  return {};
}

/** Ends the cluster's task under this execution: with `set` on success, alone on failure. */
async function endRolling(input: RollingInput, set: Record<string, unknown>, remove: string[]) {
  const names: Record<string, string> = { '#task': 'task', '#updated': 'updated', '#rolling': 'rolling' };
  const values: Record<string, unknown> = { ':none': 'NONE', ':now': troveTime(), ':e': input.execution };
  const sets = ['#task = :none', '#updated = :now'];
  Object.entries(set).forEach(([k, v], i) => {
    names[`#s${i}`] = k;
    values[`:s${i}`] = v;
    sets.push(`#s${i} = :s${i}`);
  });
  const removes = ['#rolling'];
  remove.forEach((k, i) => {
    names[`#r${i}`] = k;
    removes.push(`#r${i}`);
  });
  try {
    await documents.send(
      new UpdateCommand({
        TableName: config.clustersTable,
        Key: { project_id: input.project_id, id: input.cluster_id },
        UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
        ConditionExpression: '#rolling.execution = :e',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  } catch (err) {
    // Another run, a reset or a delete took the cluster: nothing of this run is left to end.
    if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
  }
}

/** Every member done: the cluster takes the new version or group, and its task is NONE again. */
export async function finishRolling(input: RollingInput) {
  const { rolling } = await rollingCluster(input);
  if (rolling.action === 'upgrade') await endRolling(input, { datastore: rolling.to }, []);
  else if (rolling.action === 'configuration_attach')
    await endRolling(input, { configuration_id: rolling.configuration_id }, []);
  else if (rolling.action === 'configuration_detach') await endRolling(input, {}, ['configuration_id']);
  else await endRolling(input, {}, []);
  return {};
}

/**
 * A member failed: the cluster's task goes back to NONE (the members already done keep the
 * change, as Trove's rolling actions leave them), and the member being worked on shows the fault
 * when the instance path did not leave one of its own.
 */
export async function failRolling(input: RollingInput & { error: { Error?: string; Cause?: string } }) {
  const cluster = await getCluster(input.project_id, input.cluster_id);
  const current = cluster?.rolling?.execution === input.execution ? cluster.rolling.current : undefined;
  const member = current ? await getInstance(input.project_id, current) : undefined;
  if (member && !member.fault)
    await updateInstance(member.project_id, member.id, { set: { fault: faultOf(input.error) } });
  await endRolling(input, {}, []);
  return {};
}
