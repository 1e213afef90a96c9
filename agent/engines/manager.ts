import type { GaleraStatus } from '../../lib/clusters/galera-status.ts';
import type { EngineCounters } from '../../lib/metrics/samples.ts';
import type { GuestLogSpec } from '../logs/spec.ts';
import type { GaleraMembership } from './galera.ts';
import type { ReplicationMode } from './replication-state.ts';

export type { EngineCounters } from '../../lib/metrics/samples.ts';

import type { TlsMaterial } from './tls.ts';

// One interface for every datastore engine the guest agent manages (Trove's datastore managers).

/** Trove's service-status descriptions, as sent in heartbeats (TROVE_API.md §3). */
export type ServiceStatusDescription =
  | 'healthy'
  | 'running'
  | 'shutdown'
  | 'crashed'
  | 'building'
  | 'failed to spawn'
  | 'blocked'
  | 'new';

export interface DatabaseSpec {
  name: string;
  character_set?: string;
  collate?: string;
}

export interface UserSpec {
  name: string;
  password: string;
  host?: string;
  databases?: { name: string }[];
}

export interface DatabaseInfo {
  name: string;
  character_set?: string;
  collate?: string;
}

/** A user as Trove lists it; `host` is '%' for any host. */
export interface UserInfo {
  name: string;
  host: string;
  databases: { name: string }[];
}

/** What updateUser may change (Trove's update_attributes); at least one is set. */
export interface UserAttributes {
  name?: string;
  password?: string;
  host?: string;
}

export interface EngineLayout {
  /** The instance's own directory; the data dir, config, socket and logs live below it. */
  baseDir: string;
  /** TCP port on 127.0.0.1 (locally) or 0.0.0.0 (on a server) that the engine listens on. */
  port: number;
  bindAddress: string;
  /** The instance's own OS user, when the compute host gives it one (else the service user). */
  osUser?: string;
  /** cgroup.procs files the engine's processes join (the flavor's memory and CPU limits). */
  cgroupProcs?: string[];
  /** The base dir is the instance's own volume: the filesystem's own figures are the instance's. */
  ownVolume?: boolean;
  /** The Trove instance id (MariaDB's server_id is derived from it: unique within a replica set). */
  instanceId?: string;
  /**
   * The datastore version the instance was created with (the agent config's). PostgreSQL runs a
   * data dir with the version that wrote it (its PG_VERSION), MariaDB with the build its
   * mariadb-build file names: after an upgrade that one wins.
   */
  datastoreVersion?: string;
}

/** Who a replica follows, and the account it replicates with (TROVE_API.md §9.2). */
export interface ReplicationSource {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** What a heartbeat says of replication (issue 12 #3): the engine's own figures and message. */
export interface ReplicationStatus {
  role: 'source' | 'replica';
  /** The source a replica follows (host:port). */
  source?: string;
  /** Replica: both threads (MariaDB IO and SQL, PostgreSQL receiver and replay) running. */
  running?: boolean;
  lag_seconds?: number;
  /** Bytes (PostgreSQL, Redis) not yet replayed; MariaDB has none and leaves it out. */
  lag_bytes?: number;
  /** The engine's position: a GTID set (MariaDB), an LSN (PostgreSQL), an offset (Redis). */
  position?: string;
  /** The engine's own message when replication is stopped or broken. */
  error?: string;
}

export interface PrepareOptions {
  memoryMb: number;
  /** Set on a replica: it starts read-only, following this source, and creates nothing itself. */
  replication?: ReplicationSource;
  databases: DatabaseSpec[];
  users: UserSpec[];
  /** Set when Trove's root_on_create is on, or a restore asks for one. */
  rootPassword?: string;
  /** The instance's TLS key and certificate, with the CA that issued them (agent/engines/tls.ts). */
  tls?: TlsMaterial;
  /** Trove's cluster_config: the engine starts as a member of a cluster (Redis: cluster mode). */
  cluster?: boolean;
}

/** A configuration group's value for one parameter (TROVE_API.md §6). */
export type OverrideValue = string | number | boolean;

/** What the engine needs of a parameter's validation rule. */
export interface OverrideRule {
  name: string;
  restart_required: boolean;
}

export interface UpgradeResult {
  from: string;
  to: string;
  method: 'pg_upgrade' | 'dump' | 'mariadb-upgrade' | 'restart';
  /** Tables whose row count and content hash were compared before and after. */
  tables: number;
  rows: number;
  seconds: number;
}

export interface FilesystemStats {
  total_bytes: number;
  used_bytes: number;
}

export interface EngineManager {
  /** Initialises the data dir (once), writes the config sized by memory, starts the engine, creates databases and users. Safe to repeat. */
  prepare(options: PrepareOptions): Promise<void>;
  /** Where the last prepare's time went, phase by phase (the agent logs it once prepare is done). */
  readonly prepareTimings?: { toString(): string };
  /** Starts the engine on an already prepared data dir (after a reboot of the guest). */
  start(): Promise<void>;
  /** Stops the engine and waits until its process is gone. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /**
   * Trove's start_db_with_conf_changes after a resize: the engine stopped, its config rewritten
   * for `memoryMb` (the new flavor's buffer pool, shared_buffers, maxmemory ...) with the
   * instance's overrides kept, and started again; resolves once it accepts connections.
   */
  startWithMemory(memoryMb: number): Promise<void>;
  /** Trove's resize_fs, online: the instance's filesystem grows to fill its extended volume. */
  resizeFilesystem(): Promise<FilesystemStats>;
  /**
   * Trove's upgrade: the engine moved to datastore version `version` with its data, verified by
   * the data's own checksums before and after; on any failure the engine runs the old version on
   * its untouched old data again and the error names the step. Engines without it are absent.
   */
  upgrade?(version: string): Promise<UpgradeResult>;
  /** After a guest restart: an upgrade that a crash cut short is undone before the engine starts. */
  recoverInterruptedUpgrade?(): Promise<void>;
  /** healthy when it accepts connections and answers a query; shutdown when not running; crashed when its process died. */
  status(): Promise<ServiceStatusDescription>;
  filesystemStats(): Promise<FilesystemStats>;
  /** The engine's default port (3306, 5432, 6379): an address's port is shown only when different. */
  readonly defaultPort: number;

  // Trove's databases, users, access and root (TROVE_API.md §4). Failures are Errors whose `name` is
  // Trove's exception (DatabaseAlreadyExists, DatabaseNotFound, UserAlreadyExists, UserNotFound,
  // BadRequest, NotImplemented) and whose message holds no password.

  /** Sorted by name, without the engine's reserved/system databases. */
  listDatabases(): Promise<DatabaseInfo[]>;
  /** DatabaseAlreadyExists if one exists (nothing is created then). */
  createDatabases(dbs: DatabaseSpec[]): Promise<void>;
  /** DatabaseNotFound if missing. */
  deleteDatabase(name: string): Promise<void>;
  /** Sorted by name then host, without reserved/system users. */
  listUsers(): Promise<UserInfo[]>;
  getUser(name: string, host: string): Promise<UserInfo | undefined>;
  /** UserAlreadyExists if one exists (nothing is created then); grants the listed databases. */
  createUsers(users: UserSpec[]): Promise<void>;
  /** UserNotFound if missing; also ends the user's open sessions. */
  deleteUser(name: string, host: string): Promise<void>;
  updateUser(name: string, host: string, attrs: UserAttributes): Promise<void>;
  changePasswords(users: { name: string; host?: string; password: string }[]): Promise<void>;
  listAccess(name: string, host: string): Promise<{ name: string }[]>;
  grantAccess(name: string, host: string, databases: string[]): Promise<void>;
  /** Also ends the user's open sessions, so an already open session loses access too. */
  revokeAccess(name: string, host: string, database: string): Promise<void>;
  /** Trove's root user gets `password` and may log in over TCP with it. */
  enableRoot(password: string): Promise<void>;
  /** Root may no longer log in over TCP; the agent's own administration keeps working. */
  disableRoot(): Promise<void>;

  // Configuration groups (TROVE_API.md §2.3, §6). Names must be among `rules` (matched without
  // regard to case); anything else, or a value the engine refuses, is an Error named BadRequest
  // and leaves the instance as it was.

  /** Trove's update_overrides + apply_overrides: persist the values in the instance's own config
   *  file (so they survive restarts) and apply the dynamic ones live. Returns whether a restart is
   *  needed for every value to be in effect. `values` replaces any previous overrides entirely. */
  applyOverrides(
    values: Record<string, OverrideValue>,
    rules: OverrideRule[],
  ): Promise<{ restartRequired: boolean }>;
  /** Removes every override: config file back to the flavor-sized defaults; dynamic ones reset live. */
  removeOverrides(rules: OverrideRule[]): Promise<{ restartRequired: boolean }>;
  /** The engine's current value of each named setting, as the engine reports it (strings). */
  currentValues(names: string[]): Promise<Record<string, string>>;
  /** The defaults the instance's config file renders for its flavor, plus the engine's own defaults for `names`. */
  effectiveDefaults(names: string[]): Promise<Record<string, string>>;

  /** Connections, cumulative queries or commands, replication lag: sent with each heartbeat. */
  counters(): Promise<EngineCounters>;

  /** Trove's guest logs of this engine: their files and how the engine's settings switch them (agent/logs/). */
  guestLogs(): GuestLogSpec[];

  // Replication (TROVE_API.md §9.2, §9.5-9.7). The account is the same on every member of a set,
  // so any of them can become the source.

  /** Trove's enable_as_master: the replication account exists and the engine can feed replicas. */
  enableAsSource(account: { user: string; password: string }): Promise<void>;
  /** Trove's attach_replica: follow `source` read-only (also a member whose source changed). */
  attachReplica(source: ReplicationSource): Promise<void>;
  /**
   * A re-seed (issue 12): this member's data replaced by what `restore` builds (a snapshot of
   * `source`, restored into an absent data dir), its own configuration, TLS and role kept; then it
   * follows `source`. Its diverged writes are gone. A failed restore puts the old data back.
   */
  reseed(restore: () => Promise<void>, source: ReplicationSource): Promise<void>;
  /** Trove's detach_replica: stop following, become a read-write standalone instance. */
  detachReplica(): Promise<void>;
  /** Trove's make_read_only: refuse (or accept again) writes from clients. */
  makeReadOnly(readOnly: boolean): Promise<void>;
  /** Trove's get_latest_txn_id: the position of the last write this member holds. */
  latestPosition(): Promise<string>;
  /** Trove's wait_for_txn: resolves once this replica has applied `position`. */
  waitForPosition(position: string, timeoutMs: number): Promise<void>;
  /** The replication state for heartbeats; undefined when the instance is in no replica set. */
  replicationStatus(): Promise<ReplicationStatus | undefined>;
  /**
   * The set's durability: with `sync` this member, whenever it is the source, waits for one
   * replica to hold each commit. Kept through restarts and role changes; refused by engines
   * that cannot wait (Redis).
   */
  setReplicationMode(mode: ReplicationMode): Promise<void>;
  /** Engines that cluster (Redis): the guest calls of agent/cluster-operations.ts. */
  cluster?: ClusterMember;
  /** MariaDB as a Galera member: the galera_* guest calls of agent/cluster-operations.ts. */
  galera?: GaleraCalls;
}

/** A Galera member's guest calls (agent/engines/galera-member.ts). */
export interface GaleraCalls {
  bootstrap(membership: GaleraMembership, password: string): Promise<void>;
  join(membership: GaleraMembership, password: string): Promise<void>;
  leave(): Promise<void>;
  status(): Promise<GaleraStatus>;
}

/** A cluster member's guest calls (Redis Cluster). */
export interface ClusterMember {
  meet(host: string, port: number): Promise<void>;
  addSlots(ranges: [number, number][]): Promise<void>;
  info(): Promise<{ cluster_state: string; cluster_slots_assigned: number; cluster_known_nodes: number }>;
  /** The cluster account (grow, shrink): its password set on this member; a new operation begins. */
  account?(password: string): Promise<void>;
  /** This member's engine password, which new members adopt (clients use one for every node). */
  password?(): Promise<string | undefined>;
  /** Makes this member the replica of the master at host:port (CLUSTER REPLICATE), once. */
  replicate?(host: string, port: number): Promise<void>;
  /** Starts the background migration of a grow or shrink on this member (see cluster_info). */
  rebalance?(request: {
    mode: 'grow' | 'shrink';
    leaving: { host: string; port: number }[];
    password: string;
  }): Promise<{ state: string }>;
}
