// Nova's place: where a guest (the agent beside its database) runs. `local` launches processes
// on this machine through the local compute host; `ec2` launches EC2 instances with cloud-init.

/** Everything a guest agent needs to start; the compute driver hands it over at boot only. */
export interface GuestAgentConfig {
  instance_id: string;
  /** mysql | mariadb | postgresql | redis (Trove's datastore manager) */
  datastore_manager: string;
  datastore_version: string;
  /** Per-instance signing key, base64. */
  key: string;
  guest_queue_url: string;
  conductor_queue_url: string;
  region: string;
  /** Seconds between heartbeats (Trove's report_interval). */
  report_interval: number;
  /** Metrics samples per write (lib/metrics/samples.ts); absent, one per heartbeat. */
  metrics_samples_per_write?: number;
  /** The guest's doorbell (lib/guest/doorbell.ts); without one the guest long-polls its queue. */
  doorbell?: GuestDoorbellConfig;
  /** AWS SDK endpoint overrides (local cloud only), e.g. { AWS_ENDPOINT_URL_SQS: ... }. */
  endpoints?: Record<string, string>;
  /** AWS credentials for the local cloud's emulators; on EC2 the instance profile is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface GuestDoorbellConfig {
  /** The WebSocket URL (wss://…) the guest connects to. */
  url: string;
  /** After an order, the queue is long-polled this long before the guest rests on the doorbell. */
  busy_seconds: number;
  /** At rest, the queue is polled this often whatever rang: the bound on a lost ring's delay. */
  rest_poll_seconds: number;
}

export interface ServerSpec {
  /** The Trove instance id; launching twice with the same id yields the same server. */
  instance_id: string;
  name: string;
  flavor: { id: string; ram: number; vcpus: number };
  volume_size_gb: number;
  datastore: { manager: string; version: string };
  agent: GuestAgentConfig;
  /** Trove's access: who may reach the database port (a security group's place). */
  access?: ServerAccess;
}

/** Trove's `access`: allowed_cidrs (none = 0.0.0.0/0) restrict the database port. */
export interface ServerAccess {
  is_public?: boolean;
  allowed_cidrs?: string[];
  /**
   * Servers of the same replica set: each may open connections to this server's engine port and
   * this server's engine to theirs, whatever allowed_cidrs say (replication between members).
   */
  replication_peers?: string[];
  /**
   * Ports of this server beside its engine's that its peers may reach too, restricted like the
   * engine port for everyone else: a Redis Cluster member's cluster bus (lib/clusters/access.ts).
   * The EC2 driver does not open them yet (docs/architecture.md).
   */
  peer_ports?: number[];
}

export type ServerStatus = 'BUILD' | 'ACTIVE' | 'SHUTDOWN' | 'ERROR' | 'DELETED';

export interface ServerAddress {
  address: string;
  type: 'private' | 'public';
  /** Set when the database listens on a port other than the engine's default. */
  port?: number;
}

export interface Server {
  id: string;
  instance_id: string;
  status: ServerStatus;
  addresses: ServerAddress[];
  fault?: string;
}

export interface ComputeDriver {
  launch(spec: ServerSpec): Promise<Server>;
  /** undefined when the server no longer exists. */
  get(serverId: string): Promise<Server | undefined>;
  /**
   * The instance's server, found by the instance id it was launched for: how a delete finds a
   * server whose launch finished after the delete read the instance (a forced delete of a build).
   */
  findByInstance(instanceId: string): Promise<Server | undefined>;
  /**
   * Neutron's port made before the server (`nova boot --nic port-id=`): the addresses the
   * instance's server will have, known before it is launched, so that its certificate is issued
   * while it launches. Idempotent per instance: called again, or after the launch, it answers the
   * same addresses, and the launch takes them. Drivers that cannot know them before the server
   * exists (EC2's public address) have none, and the certificate waits for the launch.
   */
  createPort?(instanceId: string, manager: string): Promise<ServerAddress[]>;
  /** Removes the instance's port, if any (the server's delete removes it too). Idempotent. */
  deletePort?(instanceId: string): Promise<void>;
  /** Idempotent: terminating a server that is gone succeeds. */
  terminate(serverId: string): Promise<void>;
  /**
   * Nova's os-stop: the server stops (agent and engine, at once: it is how a failover fences a
   * source that must never take writes again) and stays, SHUTDOWN, with its volume, until
   * `start`. Idempotent.
   */
  stop(serverId: string): Promise<void>;
  /** Nova's os-start: a stopped server boots again (its agent starts its engine). Idempotent. */
  start(serverId: string): Promise<void>;
  /**
   * Nova's reboot, as Trove's mgmt reboot asks it: everything on the server stops and it boots
   * again on the same volume (its agent starts its engine). Returns once the server is booting.
   */
  reboot(serverId: string): Promise<void>;
  /**
   * Nova's rebuild, as Trove's mgmt rebuild asks it: the server gets a fresh root from `imageId`
   * (guest agent and engine binaries) and boots on it with the same data volume, address and
   * identity. Throws ImageNotFound, before touching the server, when there is no such image;
   * RebuildPending while the new root is still being put in place (the workflow calls again,
   * with the same `requestToken`, so that a retried step starts nothing twice).
   */
  rebuild(serverId: string, imageId: string, requestToken?: string): Promise<void>;
  /** Whether `imageId` names an image this driver can rebuild a server from (Glance's show). */
  imageExists(imageId: string): Promise<boolean>;
  /** Applies a new `access` to a running server at once (no restart). */
  applyAccess(serverId: string, access: ServerAccess): Promise<void>;
  /**
   * Nova's resize: the server gets the flavor's memory and CPU (the engine is stopped first by
   * the workflow). Idempotent; throws ResizePending while the change is still under way, and the
   * workflow calls again (an EC2 instance must stop, change type and start).
   */
  resize(serverId: string, flavor: ServerSpec['flavor']): Promise<void>;
  /**
   * Cinder's extend: the server's volume grows to `sizeGb` while it is in use (never shrinks).
   * Idempotent; throws ResizePending until the new size is usable; the guest then grows its
   * filesystem (`resize_fs`).
   */
  extendVolume(serverId: string, sizeGb: number): Promise<void>;
  /**
   * A replica set's writer endpoint (issue 12 #5): a stable address that leads to `serverId`'s
   * engine, created the first time and moved by later calls (idempotent). Optional: a driver
   * without one (EC2 for now, docs/architecture.md) leaves sets without a writer endpoint.
   */
  pointWriter?(writerId: string, serverId: string): Promise<WriterEndpoint>;
  /** Removes the writer endpoint for good; one that is gone is no error. */
  removeWriter?(writerId: string): Promise<void>;
}

/** Where clients of a replica set send writes, whichever member is its source. */
export interface WriterEndpoint {
  address: string;
  port: number;
}

/** A resize or extend that is under way: the workflow's step retries until it is done. */
export class ResizePending extends Error {
  override name = 'Troveless.ResizePending';
}

/** A rebuild whose new root is not in place yet: the workflow's step calls again. */
export class RebuildPending extends Error {
  override name = 'Troveless.RebuildPending';
}

/** Nova's "Image ... could not be found.": nothing was changed on the server. */
export class ImageNotFound extends Error {
  override name = 'Troveless.ImageNotFound';
  constructor(readonly imageId: string) {
    super(`Image ${imageId} could not be found.`);
  }
}

/** Where the guest's engine lives and listens; chosen by the compute layer, not by the agent. */
export interface AgentLayout {
  /** The instance's own directory (data dir, config, socket, pid files, logs below it). */
  baseDir: string;
  port: number;
  bindAddress: string;
  /**
   * The instance's own OS user (the local compute host's isolation): engines run as it instead
   * of the shared service user (mysql, postgres, redis).
   */
  osUser?: string;
  /** cgroup.procs files the engine's processes join (the flavor's memory and CPU limits). */
  cgroupProcs?: string[];
  /** The base dir is the instance's own filesystem (its volume): its usage is the instance's. */
  ownVolume?: boolean;
}

/**
 * The file a guest agent is started with (its only argument is this file's path): the agent's
 * config plus the layout and size the compute layer chose. Holds the instance key (mode 0600),
 * or on EC2 the name of the SSM SecureString that holds it (user data is readable from IMDS).
 */
export interface AgentConfigFile extends Omit<GuestAgentConfig, 'key'> {
  key?: string;
  /** SSM SecureString holding the key, readable only by this instance (lib/compute/ec2.ts). */
  key_parameter?: string;
  layout: AgentLayout;
  flavor: ServerSpec['flavor'];
  volume_size_gb: number;
}
