import { z } from 'zod';

// Request shapes of the instance routes (Trove's apischema.instance), the single source of both
// validation and types.
const name = z
  .string()
  .min(1)
  .max(255)
  .regex(/[A-Za-z0-9]/, 'must contain a letter or a digit');

const volumeSize = z.union([z.number().int().min(1), z.string().regex(/^\d+$/).transform(Number)]);

export const DatabaseRequest = z.object({
  name: z.string().min(1).max(64),
  character_set: z.string().max(32).optional(),
  collate: z.string().max(64).optional(),
});

export const UserRequest = z.object({
  name: z.string().min(1).max(64),
  password: z.string().min(1).max(255),
  host: z.string().min(1).max(255).optional(),
  databases: z.array(z.object({ name: z.string().min(1).max(64) })).optional(),
});

export const CreateInstanceRequest = z.object({
  instance: z.looseObject({
    name,
    flavorRef: z.union([z.string(), z.number().int()]).optional(),
    volume: z.looseObject({ size: volumeSize, type: z.string().nullable().optional() }).optional(),
    datastore: z
      .looseObject({
        type: z.string().optional(),
        version: z.string().optional(),
        version_number: z.string().optional(),
      })
      .optional(),
    databases: z.array(DatabaseRequest).optional(),
    users: z.array(UserRequest).optional(),
    nics: z
      .array(
        z.strictObject({
          'net-id': z.string().optional(),
          network_id: z.string().optional(),
          subnet_id: z.string().optional(),
          ip_address: z.ipv4().optional(),
        }),
      )
      .max(1)
      .optional(),
    availability_zone: z.string().optional(),
    region_name: z.string().optional(),
    access: z
      .looseObject({ is_public: z.boolean().optional(), allowed_cidrs: z.array(z.cidrv4()).optional() })
      .optional(),
    locality: z.enum(['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity']).optional(),
    configuration: z.string().nullable().optional(),
    modules: z.array(z.object({ id: z.string() })).optional(),
    replica_of: z.string().optional(),
    replica_count: z.number().int().min(1).max(3).optional(),
    restorePoint: z.object({ backupRef: z.string() }).optional(),
  }),
});
export type CreateInstanceRequest = z.infer<typeof CreateInstanceRequest>['instance'];

export const UpdateInstanceRequest = z.object({
  instance: z.strictObject({
    name: name.optional(),
    replica_of: z.unknown().optional(),
    slave_of: z.unknown().optional(),
    configuration: z.string().nullable().optional(),
    datastore_version: z.string().optional(),
    access: z.looseObject({}).optional(),
  }),
});

export const ActionRequest = z.looseObject({
  restart: z.looseObject({}).optional(),
  reset_status: z.looseObject({ force_delete: z.boolean().optional() }).optional(),
  resize: z.unknown().optional(),
  promote_to_replica_source: z.unknown().optional(),
  eject_replica_source: z.unknown().optional(),
});
