import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { idRef, safeText } from '../validation.ts';

// Request and answer shapes of the cluster routes (Trove's apischema.cluster and
// trove/cluster/views.py). Strings are bounded and safe like the instance routes'.
const name = safeText(255)
  .min(1)
  .regex(/[A-Za-z0-9]/, 'must contain a letter or a digit');

const volumeSize = z.union([z.number().int().min(1), z.string().regex(/^\d+$/).transform(Number)]);

/** One member asked for: Trove's create reads flavorRef, volume, nics and availability_zone. */
export const ClusterInstanceRequest = z.looseObject({
  flavorRef: z.union([idRef(), z.number().int()]),
  volume: z.looseObject({ size: volumeSize, type: safeText(255).nullable().optional() }).optional(),
  nics: z.array(z.looseObject({})).max(1).optional(),
  availability_zone: safeText(255).optional(),
  region_name: safeText(255).optional(),
  modules: z.array(z.object({ id: idRef() })).optional(),
  name: name.optional(),
  // The CLI sends `type=` options as a list (troveclient allows several per member).
  type: z.union([safeText(64), z.array(safeText(64)).max(8)]).optional(),
  related_to: safeText(255).optional(),
});

export const CreateClusterRequest = z.object({
  cluster: z.looseObject({
    name,
    datastore: z.looseObject({ type: idRef(), version: idRef() }),
    instances: z.array(ClusterInstanceRequest).min(1).max(64),
    locality: z.enum(['affinity', 'anti-affinity']).optional(),
    configuration: idRef().optional(),
    extended_properties: z.looseObject({}).optional(),
  }),
});
export type CreateClusterRequest = z.infer<typeof CreateClusterRequest>['cluster'];

/** `reset-status` (and `force_delete`, which the CLI's force delete sends first). */
export const ResetStatusRequest = z.looseObject({ force_delete: z.boolean().optional() });

/** Exactly one action key (lib/clusters/operations.ts; the rolling ones in rolling.ts). */
/** Grow's new members and shrink's leaving ones (lib/clusters/resize-schemas.ts). */
export const GrowMembers = z.array(ClusterInstanceRequest).min(1).max(64);
export const ShrinkMembers = z
  .array(z.looseObject({ id: idRef() }))
  .min(1)
  .max(64);

export const ClusterActionRequest = z.looseObject({
  'reset-status': ResetStatusRequest.optional(),
  grow: GrowMembers.optional(),
  shrink: ShrinkMembers.optional(),
  restart: z.looseObject({}).optional(),
  upgrade: z.looseObject({ datastore_version: z.string() }).optional(),
  configuration_attach: z.looseObject({ configuration_id: z.string() }).optional(),
  configuration_detach: z.looseObject({}).optional(),
});

const links = z.array(Link);
const ipObject = z.object({ address: z.string(), type: z.string(), network: z.string().optional() });

export const ClusterMemberView = z.looseObject({
  id: z.string(),
  name: z.string(),
  type: z.string(),
  links,
  shard_id: z.string().optional(),
  status: z.string().optional(),
  flavor: z.object({ id: z.string(), links }).optional(),
  volume: z.object({ size: z.number() }).optional(),
  ip: z.array(ipObject).optional(),
});
export type ClusterMemberView = z.infer<typeof ClusterMemberView>;

export const ClusterView = z.looseObject({
  id: z.string(),
  name: z.string(),
  task: z.object({ id: z.number(), name: z.string(), description: z.string() }),
  created: z.string(),
  updated: z.string(),
  links,
  datastore: z.object({ type: z.string(), version: z.string() }),
  instances: z.array(ClusterMemberView),
  ip: z.array(ipObject).optional(),
  locality: z.string().optional(),
  configuration: z.string().optional(),
});
export type ClusterView = z.infer<typeof ClusterView>;

export const ClusterResponse = z.object({ cluster: ClusterView });
export const ClustersResponse = z.object({ clusters: z.array(ClusterView), links: links.optional() });
