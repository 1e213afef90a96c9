import { config } from '../config.ts';
import { BadRequest, UnprocessableEntity } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';
import { assertCanAct, loadInstance } from '../instances/operations.ts';
import { transact, updateInstance, updateItem } from '../instances/repository.ts';
import { lastHeard } from '../instances/status.ts';
import { startWorkflow, type Workflow } from '../workflows.ts';
import { membersOf } from './members.ts';

// Trove's replica actions (TROVE_API.md §2.3, §2.5): the checks and messages are Trove's; every
// member involved takes the task (PROMOTING, EJECTING, DETACHING) in one transaction, on condition
// that none is busy, then the workflow runs the steps.

/** `{"promote_to_replica_source": {}}` on a replica: a switchover to it. */
export async function promoteToReplicaSource(projectId: string, id: string): Promise<void> {
  const item = await loadInstance(projectId, id);
  assertCanAct(item);
  if (!item.replica_of_id) throw new BadRequest(`Instance ${id} is not a replica.`);
  const members = await membersOf(item);
  await claim(members, 'PROMOTING', item);
  await start('replica-promote', `promote-${id}-${Date.now()}`, projectId, id, members, 'PROMOTING');
}

/** `{"eject_replica_source": {}}` on a source whose heartbeat has expired: its best replica takes over. */
export async function ejectReplicaSource(projectId: string, id: string): Promise<void> {
  const item = await loadInstance(projectId, id);
  // The source is dead: only a task under way stops an eject (Trove checks the same first).
  if (!['NONE', 'RESTART_REQUIRED'].includes(item.task_status))
    throw new UnprocessableEntity(
      `Instance ${id} is not currently available for an action to be performed (task status was ${item.task_status}).`,
    );
  if (!item.replica_ids?.length) throw new BadRequest(`Instance ${id} is not a replica source.`);
  const silentFor = (Date.now() - Date.parse(`${lastHeard(item)}Z`)) / 1000;
  if (silentFor < config.heartbeatExpirySeconds)
    throw new BadRequest(`Replica Source ${id} cannot be ejected as it has a current heartbeat`);
  const members = await membersOf(item);
  await claim(members, 'EJECTING', undefined);
  await start('replica-eject', `eject-${id}-${Date.now()}`, projectId, id, members, 'EJECTING');
}

/** `PATCH /instances/{id}` with `replica_of` present: the replica becomes standalone. */
export async function detachReplica(projectId: string, id: string): Promise<void> {
  const item = await loadInstance(projectId, id);
  assertCanAct(item);
  if (!item.replica_of_id) throw new BadRequest(`Instance ${id} is not a replica.`);
  await claim([item], 'DETACHING', item);
  await start('replica-detach', `detach-${id}-${Date.now()}`, projectId, id, [item], 'DETACHING');
}

async function claim(members: InstanceItem[], task: string, asked: InstanceItem | undefined) {
  // Every promotion raises the set's term (DESIGN.md): the orders of this one carry it, and a
  // guest refuses any order of an older term from then on.
  const term = Math.max(0, ...members.map((m) => m.replication_term ?? 0)) + 1;
  const claimed = await transact(
    members.map((m) =>
      updateItem(m.project_id, m.id, {
        set: { task_status: task, replication_term: term },
        remove: ['fault'],
        condition: {
          expression: 'task_status IN (:none, :rr)',
          values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED' },
        },
      }),
    ),
  );
  if (!claimed) {
    throw new UnprocessableEntity(
      `Instance ${asked?.id ?? members[0]?.id} is not currently available for an action to be performed.`,
    );
  }
}

async function start(
  workflow: Workflow,
  name: string,
  projectId: string,
  id: string,
  members: InstanceItem[],
  task: string,
) {
  try {
    await startWorkflow(workflow, name, {
      project_id: projectId,
      instance_id: id,
      members: members.map((m) => m.id),
      // Only the control plane's own failover fences (lib/replication/failover.ts).
      ...(workflow === 'replica-eject' ? { failover: false } : {}),
    });
  } catch (err) {
    for (const m of members)
      await updateInstance(projectId, m.id, {
        set: { task_status: 'NONE' },
        condition: { expression: 'task_status = :t', values: { ':t': task } },
      });
    throw err;
  }
}
