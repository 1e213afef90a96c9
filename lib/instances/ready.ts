import type { InstanceItem } from './model.ts';
import { updateInstance } from './repository.ts';

/**
 * A build is over once its guest has prepared: the task ends (BUILD shows ACTIVE from the guest's
 * "healthy") and the users' passwords and the TLS key, which have reached the engine, are kept no
 * longer. Only a build still under way is ended (a delete that started meanwhile keeps its
 * DELETING); false when there was none.
 *
 * Written by the workflow's MarkReady and, for a plain instance, by the conductor as soon as the
 * prepare answer arrives (issue 16: one Lambda and two state transitions less between the guest's
 * answer and ACTIVE). Whichever comes second finds no build and changes nothing.
 */
export function markBuilt(item: Pick<InstanceItem, 'project_id' | 'id'>): Promise<boolean> {
  return updateInstance(item.project_id, item.id, {
    set: { task_status: 'NONE' },
    remove: ['sealed_prepare', 'sealed_tls', 'fault'],
    condition: { expression: 'task_status = :building', values: { ':building': 'BUILDING' } },
  });
}

/**
 * The conductor may end a build itself when nothing else follows prepare in MarkReady: not for a
 * replica (its source's mode and the set's writer endpoint are settled there) nor a cluster member
 * (the cluster's workflow owns its members' builds).
 */
export function endsWithPrepare(item: InstanceItem): boolean {
  return item.task_status === 'BUILDING' && !item.replica_of_id && !item.cluster_id;
}
