import type { InstanceItem } from '../instances/model.ts';

/** One cluster item (the clusters table), keyed by project first like every other item. */
export interface ClusterItem {
  project_id: string;
  id: string;
  name: string;
  created: string;
  updated: string;
  /** Trove's cluster task by name (lib/clusters/tasks.ts gives its code and description). */
  task: ClusterTaskName;
  datastore: InstanceItem['datastore'];
  /** The member instances, in the order they were created (the instances table holds them). */
  instance_ids: string[];
  locality?: string;
  configuration_id?: string;
  /** The delete workflow's execution name, so that a delete whose workflow ended can run again. */
  delete_execution?: string;
  /** The create workflow's execution name (the cluster id): reset-status stops it. */
  create_execution?: string;
  /** The rolling action under way (restart, upgrade, configuration), lib/clusters/rolling.ts. */
  rolling?: RollingRecord;
}

/** What a rolling workflow works through, one member at a time; its steps read it back. */
export interface RollingRecord {
  action: 'restart' | 'upgrade' | 'configuration_attach' | 'configuration_detach';
  /** The workflow's execution name: a step of an older run finds another and stops. */
  execution: string;
  /** The members done so far, in order. */
  done: string[];
  /** The member being worked on (its fault is shown when the action fails). */
  current?: string;
  /** upgrade: the version moved to. */
  to?: InstanceItem['datastore'];
  /** configuration_attach: the group attached. */
  configuration_id?: string;
}

export type ClusterTaskName =
  | 'NONE'
  | 'BUILDING'
  | 'DELETING'
  | 'ADDING_SHARD'
  | 'GROWING_CLUSTER'
  | 'SHRINKING_CLUSTER'
  | 'UPGRADING_CLUSTER'
  | 'RESTARTING_CLUSTER'
  | 'UPDATING_CLUSTER';
