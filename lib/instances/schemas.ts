import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { idRef, imageId, safeText } from '../validation.ts';

// Request shapes of the instance routes (Trove's apischema.instance), the single source of both
// validation and types. Every string is bounded and free of control and bidi characters
// (lib/text.ts): ids and names end up in DynamoDB keys, engine commands and listings.
const name = safeText(255)
  .min(1)
  .regex(/[A-Za-z0-9]/, 'must contain a letter or a digit');

const volumeSize = z.union([z.number().int().min(1), z.string().regex(/^\d+$/).transform(Number)]);

export const DatabaseRequest = z.object({
  name: safeText(64).min(1),
  character_set: safeText(32).optional(),
  collate: safeText(64).optional(),
});

export const UserRequest = z.object({
  name: safeText(64).min(1),
  password: safeText(255).min(1),
  host: safeText(255).min(1).optional(),
  databases: z.array(z.object({ name: safeText(64).min(1) })).optional(),
});

/**
 * Beyond Trove: the instance's replica set's `mode` (`async` | `sync`, its durability) and
 * `failover` (`manual`, Trove's: a person ejects a dead source; `automatic`: the control plane
 * does, lib/replication/failover.ts). At least one of them.
 */
export const ReplicationModeRequest = z
  .strictObject({
    mode: z.enum(['async', 'sync']).optional(),
    failover: z.enum(['automatic', 'manual']).optional(),
  })
  .refine((r) => r.mode !== undefined || r.failover !== undefined, {
    message: 'replication needs mode or failover',
  });

export const CreateInstanceRequest = z.object({
  instance: z.looseObject({
    name,
    flavorRef: z.union([idRef(), z.number().int()]).optional(),
    volume: z.looseObject({ size: volumeSize, type: safeText(255).nullable().optional() }).optional(),
    datastore: z
      .looseObject({
        type: idRef().optional(),
        version: idRef().optional(),
        version_number: idRef().optional(),
      })
      .optional(),
    databases: z.array(DatabaseRequest).optional(),
    users: z.array(UserRequest).optional(),
    nics: z
      .array(
        z.strictObject({
          'net-id': idRef().optional(),
          network_id: idRef().optional(),
          subnet_id: idRef().optional(),
          ip_address: z.ipv4().optional(),
        }),
      )
      .max(1)
      .optional(),
    availability_zone: safeText(255).optional(),
    region_name: safeText(255).optional(),
    access: z
      .looseObject({ is_public: z.boolean().optional(), allowed_cidrs: z.array(z.cidrv4()).optional() })
      .optional(),
    locality: z.enum(['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity']).optional(),
    configuration: idRef().nullable().optional(),
    modules: z.array(z.object({ id: idRef() })).optional(),
    replica_of: idRef().optional(),
    replica_count: z.number().int().min(1).max(100).optional(),
    /** Beyond Trove: the replica set's durability (sync: a commit waits for one replica). */
    replication: ReplicationModeRequest.optional(),
    restorePoint: z.object({ backupRef: idRef() }).optional(),
  }),
});
export type CreateInstanceRequest = z.infer<typeof CreateInstanceRequest>['instance'];

export const UpdateInstanceRequest = z.object({
  instance: z.strictObject({
    name: name.optional(),
    replica_of: z.unknown().optional(),
    slave_of: z.unknown().optional(),
    configuration: idRef().nullable().optional(),
    datastore_version: idRef().optional(),
    replication: ReplicationModeRequest.optional(),
    access: z
      .looseObject({ is_public: z.boolean().optional(), allowed_cidrs: z.array(z.cidrv4()).optional() })
      .optional(),
  }),
});

/** Trove's resize body: a flavor (id or href) or a volume size, never both (checked in resize.ts). */
export const ResizeRequest = z.strictObject({
  flavorRef: z.union([idRef(), z.number().int().nonnegative()]).optional(),
  volume: z
    .strictObject({
      size: z.union([z.number().int().positive(), z.string().regex(/^[1-9][0-9]{0,5}$/)]),
    })
    .optional(),
});
export type ResizeRequest = z.infer<typeof ResizeRequest>;

export const ActionRequest = z.looseObject({
  restart: z.looseObject({}).optional(),
  reset_status: z.looseObject({ force_delete: z.boolean().optional() }).optional(),
  resize: ResizeRequest.optional(),
  promote_to_replica_source: z.unknown().optional(),
  eject_replica_source: z.unknown().optional(),
});
export type ActionRequest = z.infer<typeof ActionRequest>;

// Answers, as the OpenAPI description states them (lib/openapi), and the types the views build
// (views.ts, ssl.ts). Views stay open objects (Trove adds keys over releases), but every key
// Troveless writes is named, so a recorded answer is checked key for key.
const links = z.array(Link);

/** Trove's InstanceView: what lists show for each instance. */
export const InstanceView = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.string(),
  operating_status: z.string(),
  links,
  flavor: z.looseObject({ id: z.string(), links }),
  datastore: z.looseObject({ type: z.string(), version: z.string(), version_number: z.string().optional() }),
  region: z.string(),
  access: z.looseObject({ is_public: z.boolean().optional(), allowed_cidrs: z.array(z.string()).optional() }),
  volume: z.looseObject({ size: z.int(), used: z.number().optional(), used_percent: z.number().optional() }),
  /** The addresses, and each with its type and the port when it is not the engine's default. */
  ip: z.array(z.string()).optional(),
  addresses: z
    .array(z.looseObject({ address: z.string(), type: z.string(), port: z.int().optional() }))
    .optional(),
  locality: z.string().optional(),
  /** On a replica: the source it follows. */
  replica_of: z.looseObject({ id: z.string(), links }).optional(),
  /** On a source: the replicas that follow it. */
  replicas: z.array(z.looseObject({ id: z.string(), links })).optional(),
  /** Admins only. */
  tenant_id: z.string().optional(),
});
export type InstanceView = z.infer<typeof InstanceView>;

/** Trove's InstanceDetailView: show, the detail list and the create reply. */
export const InstanceDetailView = InstanceView.extend({
  datastore: z.looseObject({ type: z.string(), version: z.string(), version_number: z.string() }),
  created: z.string(),
  updated: z.string(),
  service_status_updated: z.string(),
  fault: z
    .looseObject({ message: z.string(), created: z.string(), details: z.string().optional() })
    .optional(),
  configuration: z.looseObject({ id: z.string(), name: z.string(), links }).optional(),
  password: z.string().optional(),
  /** Trove's cluster_id: the cluster this instance is a member of. */
  cluster_id: z.string().optional(),
  /** Beyond Trove: the member's replication as its guest last reported it. */
  replication: z
    .looseObject({
      role: z.enum(['source', 'replica']),
      /** The replica set's durability: sync makes the source wait for one replica per commit. */
      mode: z.enum(['async', 'sync']),
      /** Who replaces a dead source: a person (manual, Trove's eject) or the control plane. */
      failover: z.enum(['automatic', 'manual']),
      /** The set's term, raised at every promote, eject and failover (the guests' fence). */
      term: z.int().optional(),
      /**
       * The set's last failovers, ejects and re-seeds, newest first (lib/replication/failover.ts,
       * reseed.ts). A failover names the old and new source; a re-seed, the member and its source.
       */
      events: z
        .array(
          z.looseObject({
            time: z.string(),
            event: z.string(),
            term: z.int(),
            old_source: z.string().optional(),
            new_source: z.string().optional(),
            member: z.string().optional(),
            source: z.string().optional(),
            message: z.string(),
          }),
        )
        .optional(),
      /** The set's writer endpoint: it always leads to the current source. */
      writer: z.looseObject({ address: z.string(), port: z.int() }).optional(),
      source: z.string().optional(),
      running: z.boolean().optional(),
      lag_seconds: z.number().optional(),
      lag_bytes: z.number().optional(),
      position: z.string().optional(),
      error: z.string().optional(),
      reported: z.string().optional(),
    })
    .optional(),
  /** Admins only. */
  server_id: z.string().optional(),
  encrypted_rpc_messaging: z.boolean().optional(),
});
export type InstanceDetailView = z.infer<typeof InstanceDetailView>;

export const InstancesResponse = z.object({ instances: z.array(InstanceView), links: links.optional() });
export const InstancesDetailResponse = z.object({
  instances: z.array(InstanceDetailView),
  links: links.optional(),
});
export const InstanceResponse = z.object({ instance: InstanceDetailView });

/** `GET /instances/{id}/configuration`: the values the engine runs with. */
export const InstanceConfigurationResponse = z.object({
  instance: z.object({ configuration: z.record(z.string(), z.string()) }),
});
export type InstanceConfigurationResponse = z.infer<typeof InstanceConfigurationResponse>;

/**
 * `GET /instances/{id}/ssl`: Trove's `{"ssl":{"status","mode","certificate":{"cn","expire_at","san"}}}`,
 * plus what a client needs to verify the instance (`pem`, `serial`, `ca_certificate`); only the
 * status while the instance has no certificate yet.
 */
export const SslResponse = z.object({
  ssl: z.union([
    z.object({ status: z.literal('off') }),
    z.object({
      status: z.literal('on'),
      mode: z.string(),
      certificate: z.looseObject({
        cn: z.string(),
        expire_at: z.string(),
        san: z.array(z.string()),
        serial: z.string(),
        pem: z.string(),
      }),
      ca_certificate: z.string(),
    }),
  ]),
});
export type SslResponse = z.infer<typeof SslResponse>;

// The management API (`/mgmt/instances`, admins only): Trove's MgmtInstanceView and its detail.
const MgmtServer = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.string(),
  tenant_id: z.string(),
  host: z.string(),
  addresses: z
    .array(z.looseObject({ address: z.string(), type: z.string(), port: z.int().optional() }))
    .optional(),
});
export const MgmtInstanceView = InstanceDetailView.extend({
  server: MgmtServer.nullable(),
  service_status: z.string().nullable(),
  tenant_id: z.string(),
  deleted: z.boolean(),
  deleted_at: z.null(),
  task_description: z.string(),
});
export const MgmtInstanceDetailView = MgmtInstanceView.extend({
  root_enabled: z.string().optional(),
  root_enabled_by: z.string().optional(),
  volume: z.looseObject({ size: z.int(), used: z.number().nullable(), total: z.int() }),
  guest_status: z.object({ state_description: z.string() }),
});
export const MgmtInstancesResponse = z.object({
  instances: z.array(MgmtInstanceView),
  links: links.optional(),
});
export const MgmtInstanceResponse = z.object({ instance: MgmtInstanceDetailView });
export const RootHistoryResponse = z.object({
  root_history: z.object({ id: z.string(), enabled: z.string(), user: z.string() }),
});
/** One of Trove's management actions (a body with any other key is its 400). */
export const MgmtActionRequest = z.looseObject({
  stop: z.looseObject({}).optional(),
  reboot: z.looseObject({}).optional(),
  migrate: z.looseObject({ host: z.string().optional() }).optional(),
  'reset-task-status': z.looseObject({}).optional(),
  // Trove's apischema: image_id required, a uuid (or here an EC2 AMI id), nothing else beside it.
  rebuild: z.strictObject({ image_id: imageId() }).optional(),
});
