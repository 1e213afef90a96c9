import type { ClusterTaskName } from './model.ts';

// Trove's ClusterTasks (trove/cluster/tasks.py): the code and description each name is shown with.
const TASKS: Record<ClusterTaskName, { id: number; description: string }> = {
  NONE: { id: 1, description: 'No tasks for the cluster.' },
  BUILDING: { id: 2, description: 'Building the initial cluster.' },
  DELETING: { id: 3, description: 'Deleting the cluster.' },
  ADDING_SHARD: { id: 4, description: 'Adding a shard to the cluster.' },
  GROWING_CLUSTER: { id: 5, description: 'Increasing the size of the cluster.' },
  SHRINKING_CLUSTER: { id: 6, description: 'Decreasing the size of the cluster.' },
  UPGRADING_CLUSTER: { id: 7, description: 'Upgrading the cluster to new version.' },
  RESTARTING_CLUSTER: { id: 8, description: 'Restarting the cluster.' },
  UPDATING_CLUSTER: { id: 9, description: 'Updating the cluster.' },
};

export function taskView(name: ClusterTaskName): { id: number; name: string; description: string } {
  const task = TASKS[name];
  return { id: task.id, name, description: task.description };
}
