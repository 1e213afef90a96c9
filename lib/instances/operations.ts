import { getCluster } from '../clusters/repository.ts';
import { computeDriver } from '../compute/index.ts';
import { attachConfiguration, detachConfiguration } from '../configurations/service.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, Forbidden, NotFound, NotImplemented, UnprocessableEntity } from '../errors.ts';
import { quotaChanges } from '../quotas.ts';
import { detachReplica } from '../replication/actions.ts';
import { serverAccessOf } from '../replication/members.ts';
import { type ReplicationMode, settleSourceMode, updateReplicationMode } from '../replication/mode.ts';
import { startWorkflow, stopWorkflow, type Workflow, workflowRunning } from '../workflows.ts';
import type { InstanceItem } from './model.ts';
import { getInstance, transact, updateInstance, updateItem } from './repository.ts';
import { refusalToAct } from './status.ts';
import type { StepInput } from './steps.ts';
import { upgradeInstance } from './upgrade.ts';

export async function loadInstance(projectId: string, id: string): Promise<InstanceItem> {
  const item = await getInstance(projectId, id);
  if (!item) throw new NotFound(`Resource ${id} cannot be found.`);
  return item;
}

function notReady(item: InstanceItem): UnprocessableEntity {
  return new UnprocessableEntity(`Instance ${item.id} is not ready.`);
}

/** Trove's validate_can_perform_action, with its two messages. */
/**
 * Trove's validate_can_perform_action. `anyGuest`: whatever the guest last said (a silent or
 * broken guest is what an admin's server reboot is for); the server, the task and running
 * backups are still checked.
 */
export function assertCanAct(item: InstanceItem, opts: { anyGuest?: boolean } = {}): void {
  if (item.task_status === 'BUILDING') throw notReady(item);
  const refusal = refusalToAct(item, opts);
  if (refusal) {
    throw new UnprocessableEntity(
      `Instance ${item.id} is not currently available for an action to be performed (${refusal}).`,
    );
  }
}

/**
 * `PUT`/`PATCH /instances/{id}`: a new name, and at most one other attribute. `configuration`
 * attaches a group (or detaches with null, or with an empty body as Trove does).
 */
export async function updateInstanceAttributes(
  projectId: string,
  id: string,
  fields: Record<string, unknown>,
) {
  const item = await loadInstance(projectId, id);
  // replica_of and its deprecated alias slave_of are one attribute (detach).
  const others = Object.keys(fields).filter(
    (k) => k !== 'name' && !(k === 'slave_of' && 'replica_of' in fields),
  );
  if (others.length > 1) throw new BadRequest("Only one attribute (except 'name') is allowed to update.");
  // Trove's detach: the key being there (whatever its value) means detach.
  if ('replica_of' in fields || 'slave_of' in fields) {
    if (typeof fields.name === 'string')
      await updateInstance(projectId, item.id, { set: { name: fields.name } });
    return detachReplica(projectId, id);
  }
  if (typeof fields.name === 'string')
    await updateInstance(projectId, item.id, { set: { name: fields.name } });
  const other = others[0];
  if (other === 'configuration' || Object.keys(fields).length === 0) {
    const target = fields.configuration;
    if (typeof target === 'string' && target)
      await attachConfiguration(projectId, id, configurationIdOf(target));
    else await detachConfiguration(projectId, id);
  } else if (other === 'replication') {
    await updateReplicationMode(
      item,
      fields.replication as { mode?: ReplicationMode; failover?: 'automatic' | 'manual' },
    );
  } else if (other === 'access') {
    await updateAccess(item, fields.access as InstanceItem['access']);
  } else if (other === 'datastore_version') {
    await upgradeInstance(item, String(fields.datastore_version));
  } else if (other) {
    throw new NotImplemented(`Updating ${other} is not supported yet.`);
  }
}

/**
 * Trove's update_access: the new allowed_cidrs (and is_public) are stored and reach the server's
 * rules at once (a security group's rules, locally the host's firewall), with no restart. A
 * server not launched yet gets them at launch.
 */
async function updateAccess(item: InstanceItem, requested: InstanceItem['access']): Promise<void> {
  const access = {
    is_public: requested?.is_public ?? item.access?.is_public ?? false,
    allowed_cidrs: requested?.allowed_cidrs ?? item.access?.allowed_cidrs,
  };
  await updateInstance(item.project_id, item.id, { set: { access } });
  // A member of a replica set keeps its peers' access whatever allowed_cidrs say.
  if (item.server_id)
    await computeDriver().applyAccess(item.server_id, await serverAccessOf({ ...item, access }));
}

/** A configuration reference may be an id or an href ending in one. */
export function configurationIdOf(ref: string): string {
  return ref.split('/').filter(Boolean).pop() ?? ref;
}

/**
 * Trove's restart: the guest restarts its engine. `rebootServer` (Trove's mgmt reboot) reboots
 * the instance's server first, the same workflow with the same task (REBOOTING).
 * `rebuildImageId` (Trove's mgmt rebuild) puts that image on the server instead, its data volume
 * kept, in the same workflow (`rebuild_server`), with the task REBUILDING (shown as Trove's
 * BUILDING). Either is allowed whatever the guest last reported: a broken guest is what they are for.
 */
export async function restartInstance(
  projectId: string,
  id: string,
  { rebootServer = false, rebuildImageId }: { rebootServer?: boolean; rebuildImageId?: string } = {},
): Promise<void> {
  const item = await loadInstance(projectId, id);
  const rebuild = rebuildImageId !== undefined;
  assertCanAct(item, { anyGuest: rebootServer || rebuild });
  const claimed = await updateInstance(projectId, id, {
    // Trove's rebuild sets the task alone: the guest says what becomes of its engine.
    set: rebuild ? { task_status: 'REBUILDING' } : { task_status: 'REBOOTING', service_status: 'restarting' },
    remove: ['fault'],
    condition: {
      expression: 'task_status IN (:none, :rr)',
      values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED' },
    },
  });
  // Another request took the instance meanwhile: same answer as if we had seen it first.
  if (!claimed)
    throw new UnprocessableEntity(`Instance ${id} is not currently available for an action to be performed.`);
  // Execution names are at most 80 characters: the instance id and the time keep them unique.
  await startOrUndo(
    `${rebuild ? 'rebuild' : rebootServer ? 'reboot' : 'restart'}-${id}-${Date.now()}`,
    'instance-restart',
    rebuild
      ? { project_id: projectId, instance_id: id, rebuild_server: { image_id: rebuildImageId } }
      : { project_id: projectId, instance_id: id, reboot_server: rebootServer },
    () =>
      updateInstance(projectId, id, { set: { task_status: 'NONE', service_status: item.service_status } }),
  );
}

/** Admin only: clears a stuck task so that the instance can be acted on (or deleted) again. */
export async function resetStatus(projectId: string, id: string, isAdmin: boolean): Promise<void> {
  if (!isAdmin) throw new Forbidden("Policy doesn't allow instance:reset_status to be performed.");
  const item = await loadInstance(projectId, id);
  // A resize cut short gives back the quota it held (its workflow then ends nothing: the task is
  // no longer its RESIZING), so nothing stays reserved for a resize that will never end.
  const held = item.resize;
  const quota = await quotaChanges(projectId, {
    ram: -(held?.ram_reserved ?? 0),
    volumes: -(held?.volumes_reserved ?? 0),
  });
  // An upgrade cut short: its workflow then ends nothing (the task is no longer UPGRADING).
  const reset = await transact([
    updateItem(projectId, id, {
      set: { task_status: 'NONE', service_status: 'unknown' },
      remove: held ? ['resize', 'upgrade'] : ['upgrade'],
      condition: held
        ? { expression: 'resize.execution = :e', values: { ':e': held.execution } }
        : { expression: 'attribute_not_exists(resize)' },
    }),
    ...quota.items,
  ]);
  // The resize ended (or another began) between the read and the write: reset what is there now.
  if (!reset) return resetStatus(projectId, id, isAdmin);
}

/**
 * Trove refuses the delete of a building instance with its own message, and its API's error
 * notification saves that message as the instance's fault (`save_instance_fault`), which later
 * GETs show; the details start with the server type, as Trove's, then the exception.
 */
async function refusedDelete(item: InstanceItem): Promise<UnprocessableEntity> {
  const refusal = new UnprocessableEntity(`Instance ${item.id} is not ready. (Status is BUILD).`);
  await updateInstance(item.project_id, item.id, {
    set: {
      fault: {
        message: refusal.message,
        created: troveTime(),
        details: `Server type: api\nUnprocessableEntity: ${refusal.message}\n`,
      },
    },
    condition: { expression: 'task_status = :building', values: { ':building': 'BUILDING' } },
  });
  return refusal;
}

/**
 * Trove's delete: quota released now, the server and its queue removed by the delete workflow.
 * As in Trove, a build still running refuses (422); but a record whose workflow is gone (a lost
 * create, a delete that stopped half-way) is never stuck: its owner's delete cleans it.
 */
export async function deleteInstance(projectId: string, id: string): Promise<void> {
  const item = await loadInstance(projectId, id);
  if (item.task_status === 'DELETING') return deleteAgain(item);
  const building = await workflowRunning('instance-create', id);
  if (item.task_status === 'BUILDING' && building) throw await refusedDelete(item);
  // A build whose task an admin reset (the CLI's `instance force delete`: reset_status, then
  // delete) still runs: it stops here, before the delete starts, so that it cannot launch or
  // prepare anything behind the delete; a server it launched meanwhile is found by the delete's
  // TerminateServer through the instance id.
  if (building) await stopWorkflow('instance-create', id, 'The instance was deleted during its build.');
  // Trove's ClusterInstanceOperationNotSupported (501): members go with their cluster's delete.
  if (item.cluster_id && !(await clusterDeleting(projectId, item.cluster_id)))
    throw new NotImplemented('Operation not supported for instances that are part of a cluster.');
  // Trove's ReplicaSourceDeleteForbidden.
  if (item.replica_ids?.length)
    throw new Forbidden('The replica source cannot be deleted without detaching the replicas.');
  // A resize under way holds more quota than the flavor and size recorded: that goes too.
  const ram = item.flavor_ram + (item.resize?.ram_reserved ?? 0);
  const volumes = item.volume_size + (item.resize?.volumes_reserved ?? 0);
  const execution = `delete-${id}`;
  let marked = false;
  // Replicas of one source deleted at once each take themselves out of its list by index: when
  // another went first, the list moved and the condition fails. That is no concurrent delete of
  // this instance: read again and retry (a few times; each one that fails saw a change).
  for (let attempt = 0; attempt < 5 && !marked; attempt++) {
    if (attempt > 0) {
      const now = await getInstance(projectId, id);
      if (!now || now.task_status === 'DELETING') return; // a concurrent delete got there first
    }
    const quota = await quotaChanges(projectId, { instances: -1, ram: -ram, volumes: -volumes });
    // A replica leaves its source's list in the same transaction (no replicas may join meanwhile).
    const leave = item.replica_of_id ? await leaveSourceItem(item) : [];
    marked = await transact([
      updateItem(projectId, id, {
        set: { task_status: 'DELETING', delete_execution: execution },
        condition: {
          expression: 'task_status <> :deleting AND attribute_not_exists(replica_ids[0])',
          values: { ':deleting': 'DELETING' },
        },
      }),
      ...leave,
      ...quota.items,
    ]);
  }
  if (!marked)
    throw new UnprocessableEntity(`Instance ${id} is not currently available for an action to be performed.`);
  if (item.replica_of_id) await settleSourceMode(projectId, item.replica_of_id);
  await startOrUndo(execution, 'instance-delete', { project_id: projectId, instance_id: id }, async () => {
    const back = await quotaChanges(projectId, { instances: 1, ram, volumes });
    await transact([updateItem(projectId, id, { set: { task_status: item.task_status } }), ...back.items]);
  });
}

/** Trove's is_cluster_deleting: a member may be deleted while its cluster is (or it is gone). */
async function clusterDeleting(projectId: string, clusterId: string): Promise<boolean> {
  const cluster = await getCluster(projectId, clusterId);
  return !cluster || cluster.task === 'DELETING' || cluster.task === 'SHRINKING_CLUSTER';
}

/** The update that takes a replica out of its source's `replica_ids` (conditional on its place). */
async function leaveSourceItem(item: InstanceItem) {
  const source = item.replica_of_id ? await getInstance(item.project_id, item.replica_of_id) : undefined;
  const at = source?.replica_ids?.indexOf(item.id) ?? -1;
  if (!source || at < 0) return [];
  const update = updateItem(item.project_id, source.id, {
    condition: { expression: `replica_ids[${at}] = :me`, values: { ':me': item.id } },
  });
  if (update.Update) update.Update.UpdateExpression += ` REMOVE replica_ids[${at}]`;
  return [update];
}

/** A delete already under way: nothing to do, unless its workflow ended without finishing. */
async function deleteAgain(item: InstanceItem): Promise<void> {
  const previous = item.delete_execution ?? `delete-${item.id}`;
  if (await workflowRunning('instance-delete', previous)) return;
  // Execution names are never reused: the time keeps this one new (at most 80 characters).
  const execution = `delete-${item.id}-${Date.now()}`;
  const claimed = await updateInstance(item.project_id, item.id, {
    set: { delete_execution: execution },
    condition: {
      expression: 'delete_execution = :p OR attribute_not_exists(delete_execution)',
      values: { ':p': previous },
    },
  });
  if (!claimed) return; // another request started it again first
  await startWorkflow('instance-delete', execution, { project_id: item.project_id, instance_id: item.id });
}

/**
 * Starts a workflow for a change already recorded; if it cannot start, the change is undone so
 * the instance is not left in a task that nothing will ever finish, and the caller gets the error.
 */
async function startOrUndo(
  name: string,
  workflow: Workflow,
  input: StepInput & Record<string, unknown>,
  undo: () => Promise<unknown>,
) {
  try {
    await startWorkflow(workflow, name, input);
  } catch (err) {
    await undo();
    throw err;
  }
}
