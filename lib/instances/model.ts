import type { ServerAddress } from '../compute/driver.ts';
import type { WaitingTasks } from '../conductor/tasks.ts';
import type { ReplicationReport } from '../guest/protocol.ts';
import type { CronTriggerRecord } from '../mistral/model.ts';
import type { InstanceModuleRecord } from '../modules/model.ts';
import type { InstanceSsl } from './ssl.ts';

/** One instance item, keyed by project first so that no query can cross projects. */
export interface InstanceItem {
  project_id: string;
  /** Trove's instance_modules rows: each module applied, by id, with the md5 it had (lib/modules). */
  modules?: Record<string, InstanceModuleRecord>;
  id: string;
  name: string;
  created: string;
  updated: string;
  region: string;
  flavor_id: string;
  flavor_ram: number;
  /** The flavor's vCPUs at create (the server's CPU limit), as Nova keeps the flavor with the server. */
  flavor_vcpus?: number;
  volume_size: number;
  datastore: { type: string; version: string; version_id: string; version_number: string; manager: string };
  task_status: string;
  service_status: string;
  service_status_updated: string;
  server_status: string;
  server_id?: string;
  addresses?: ServerAddress[];
  volume_used_bytes?: number;
  volume_total_bytes?: number;
  fault?: { message: string; created: string; details?: string };
  access?: { is_public?: boolean; allowed_cidrs?: string[] };
  locality?: string;
  availability_zone?: string;
  /** The guest's signing key, wrapped (lib/guest/keys.ts). */
  wrapped_key: string;
  /** prepare's databases and users, encrypted with the guest's own key until prepare has run. */
  sealed_prepare?: string;
  /**
   * The serial of the instance's TLS certificate, kept with its CA in an item of their own
   * (certificate-store.ts; TROVE_API.md §8.5, lib/instances/certificate.ts).
   */
  ssl_serial?: string;
  /** The certificate inline, as items written before it had an item of its own keep it. */
  ssl?: InstanceSsl;
  /** The certificate's key, sealed with the guest's own key until prepare has installed it. */
  sealed_tls?: string;
  /** Troveless's backup policy (schedule, pattern, retention) and the scheduler's state. */
  backup_policy?: Record<string, unknown>;
  backup_policy_created?: string;
  backup_policy_state?: { last_run?: string; runs_since_full?: number };
  /** The Mistral cron trigger this policy was made through, as its client sees it (lib/mistral/). */
  backup_policy_trigger?: CronTriggerRecord;
  /** The backup running now, if any: the instance shows BACKUP meanwhile. */
  running_backup_id?: string;
  /** The configuration group attached, if any. */
  configuration_id?: string;
  /** Trove's RootHistory: when root was last enabled (and by whom) and disabled. */
  root_enabled_at?: string;
  root_enabled_by?: string;
  root_disabled_at?: string;
  /** The `sent` of the newest heartbeat applied (Trove's LastSeen). */
  last_seen_heartbeat?: number;
  /** Workflow steps waiting for this guest, by operation id (lib/conductor/tasks.ts). */
  waiting_tasks?: WaitingTasks;
  /** The delete workflow's execution name, so that a delete whose workflow ended can run again. */
  delete_execution?: string;
  /** Trove's cluster_id: the cluster this instance is a member of (lib/clusters). */
  cluster_id?: string;
  /**
   * Trove's member type within its cluster: absent for a `member` (a Redis master, a Galera
   * node); `replica` for a Redis Cluster replica of the member `cluster_master_id`.
   */
  cluster_type?: 'replica';
  /** A replica's master member (the `related_to` it was asked with, resolved to an id). */
  cluster_master_id?: string;
  /** Trove's slave_of_id: the source this replica follows. */
  replica_of_id?: string;
  /** The replicas following this source (Trove finds them by slave_of_id; kept here for views). */
  replica_ids?: string[];
  /** The replica set's durability (lib/replication/mode.ts); absent = async, Trove's. */
  replication_mode?: 'async' | 'sync';
  /** Who replaces a dead source (lib/replication/failover.ts); absent = manual, Trove's. */
  replication_failover?: 'automatic' | 'manual';
  /** The set's term (DESIGN.md's fence): raised by a conditional write at every promotion. */
  replication_term?: number;
  /** Set while a failover of this source runs: its execution name (the set's failover lock). */
  failover_lock?: string;
  /** The set's last failovers, newest first, at most 10 (shown in the replication view). */
  replication_events?: ReplicationEvent[];
  /** The `sent` of the newest heartbeat whose engine answered (the failover's silence clock). */
  healthy_heartbeat?: number;
  /** The replica set's writer endpoint (lib/replication/writer.ts), the same on every member. */
  writer?: { id: string; address: string; port: number };
  /** The replica set's replication account, sealed with this instance's own key. */
  sealed_replication?: string;
  /** A new replica's snapshot of its source, once taken: what its prepare restores and checks. */
  replication_snapshot?: { checksum: string; size_bytes: number };
  /**
   * The last re-seed of this member (lib/replication/reseed.ts): the need it answers (a need is
   * re-seeded once), from which source, by which execution, and the engine's reason.
   */
  reseed?: { since: number; source_id: string; execution: string; reason: string };
  /** The re-seed's snapshot object and data key with the set's account, sealed with this instance's key. */
  sealed_reseed?: string;
  /** The replication state its guest last reported (role, source, lag, error: issue 12 #3). */
  replication?: ReplicationReport;
  /** The resize under way (task RESIZING): what it changes and the quota it holds meanwhile. */
  resize?: ResizeRecord;
  /** The upgrade under way (task UPGRADING): from and to which datastore version. */
  upgrade?: UpgradeRecord;
}

/** A major-version upgrade in progress (lib/instances/upgrade.ts); the workflow's last step removes it. */
export interface UpgradeRecord {
  /** The upgrade workflow's execution name: only it may end this upgrade. */
  execution: string;
  started: string;
  /** The backup taken first (Trove takes one before it touches the data). */
  backup_id: string;
  from: InstanceItem['datastore'];
  to: InstanceItem['datastore'];
}

/** One failover (or failed failover) of a replica set, as users read it on every member. */
export interface ReplicationEvent {
  time: string;
  event: 'failover' | 'failover_failed' | 'reseed' | 'reseeded' | 'reseed_failed';
  term: number;
  /** A failover's: the source it replaced. */
  old_source?: string;
  new_source?: string;
  /** A re-seed's: the member re-seeded, and the source whose snapshot it took. */
  member?: string;
  source?: string;
  message: string;
}

/** A resize in progress (lib/instances/resize.ts); the workflow's last step removes it. */
export interface ResizeRecord {
  kind: 'flavor' | 'volume';
  /** The resize workflow's execution name: only it may end this resize. */
  execution: string;
  /** NONE or RESTART_REQUIRED: a volume resize leaves a pending restart pending. */
  previous_task: string;
  started: string;
  old_flavor?: { id: string; ram: number; vcpus: number };
  new_flavor?: { id: string; ram: number; vcpus: number };
  old_size?: number;
  new_size?: number;
  /** Quota held beyond the instance's own flavor and volume until the resize ends. */
  ram_reserved?: number;
  volumes_reserved?: number;
}
