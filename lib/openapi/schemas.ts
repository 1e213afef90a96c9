import { z } from 'zod';

// Response shapes the OpenAPI description (document.ts) states, in Trove's words. Each is the
// shape a client may rely on: objects stay open (Trove adds keys over releases; a client must
// ignore the ones it does not know), the keys named here are always there.

export const Link = z.object({ rel: z.string(), href: z.string() });
const links = z.array(Link);

/** Trove's fault body: `{"badRequest": {"code": 400, "message": "..."}}`, named after the status. */
export const FaultResponse = z
  .record(z.string(), z.object({ code: z.int(), message: z.string() }))
  .describe("Trove's fault body, keyed by the fault's name (badRequest, itemNotFound, ...)");

export const VersionsResponse = z.object({
  versions: z.array(z.looseObject({ id: z.string(), status: z.string(), updated: z.string(), links })),
});

export const FlavorView = z.looseObject({
  id: z.union([z.int(), z.string()]),
  str_id: z.string(),
  name: z.string(),
  ram: z.int(),
  vcpus: z.int(),
  disk: z.int(),
  links,
});
export const FlavorsResponse = z.object({ flavors: z.array(FlavorView) });
export const FlavorResponse = z.object({ flavor: FlavorView });

const VersionView = z.looseObject({ id: z.string(), name: z.string(), links });
export const DatastoreView = z.looseObject({
  id: z.string(),
  name: z.string(),
  links,
  versions: z.array(VersionView),
  default_version: z.string().optional(),
});
export const DatastoresResponse = z.object({ datastores: z.array(DatastoreView) });

export const LimitsResponse = z.object({
  limits: z.array(
    z.looseObject({
      verb: z.literal('ABSOLUTE'),
      max_instances: z.int(),
      max_backups: z.int(),
      max_volumes: z.int(),
      max_ram: z.int(),
    }),
  ),
});

export const InstanceView = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.string(),
  links,
  flavor: z.looseObject({ id: z.string(), links }),
  datastore: z.looseObject({ type: z.string(), version: z.string() }),
  volume: z.looseObject({ size: z.int() }),
});
export const InstancesResponse = z.object({ instances: z.array(InstanceView), links: links.optional() });
export const InstanceResponse = z.object({ instance: InstanceView });

export const QuotasResponse = z.object({
  quotas: z.array(z.object({ resource: z.string(), in_use: z.int(), reserved: z.int(), limit: z.int() })),
});

export const DatabasesResponse = z.object({
  databases: z.array(z.looseObject({ name: z.string() })),
  links: links.optional(),
});
export const UsersResponse = z.object({
  users: z.array(
    z.looseObject({ name: z.string(), host: z.string(), databases: z.array(z.object({ name: z.string() })) }),
  ),
  links: links.optional(),
});

export const BackupView = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.string(),
  instance_id: z.string(),
  created: z.string(),
  updated: z.string(),
});
export const BackupsResponse = z.object({ backups: z.array(BackupView), links: links.optional() });
export const BackupResponse = z.object({ backup: BackupView });

export const ConfigurationsResponse = z.object({
  configurations: z.array(z.looseObject({ id: z.string(), name: z.string() })),
  links: links.optional(),
});
