import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { safeText } from '../validation.ts';
import { MANAGERS } from './types.ts';

// Request shapes of the management routes (Trove's apischema.mgmt_datastore_version, and Nova's
// flavor create for our flavor extension): the single source of validation and types.

const name = safeText(255).trim().min(1);

/** Trove takes packages as a list or a comma-separated string and stores the list. */
const packages = z
  .union([safeText(4096), z.array(safeText(255)).max(100)])
  .transform((p) => (typeof p === 'string' ? p.split(',') : p).map((s) => s.trim()).filter(Boolean));

const imageTags = z.array(safeText(255).trim().min(1)).max(100);
const manager = z.enum(MANAGERS);

export const CreateDatastoreVersionRequest = z.strictObject({
  version: z.strictObject({
    name,
    datastore_name: name,
    datastore_manager: manager,
    image: safeText(255).trim().min(1).optional(),
    image_tags: imageTags.optional(),
    packages: packages.optional(),
    active: z.boolean(),
    default: z.boolean().optional(),
    /** The version number; Trove uses the name when it is missing. */
    version: name.optional(),
  }),
});
export type CreateDatastoreVersionRequest = z.infer<typeof CreateDatastoreVersionRequest>['version'];

/** PATCH takes the fields at the top level (troveclient's `mgmt datastore-versions edit`). */
export const UpdateDatastoreVersionRequest = z.strictObject({
  name: name.optional(),
  datastore_manager: manager.optional(),
  /** null removes the image. */
  image: safeText(255).trim().min(1).nullable().optional(),
  image_tags: imageTags.optional(),
  packages: packages.optional(),
  active: z.boolean().optional(),
  default: z.boolean().optional(),
});
export type UpdateDatastoreVersionRequest = z.infer<typeof UpdateDatastoreVersionRequest>;

const count = (min: number) => z.number().int().min(min);

export const CreateFlavorRequest = z.strictObject({
  flavor: z.strictObject({
    /** Nova picks the id when none is given; ours is the next free integer. */
    id: z
      .union([
        z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be up to 64 letters, digits, ".", "_", "-"'),
        count(0),
      ])
      .transform(String)
      .optional(),
    name,
    ram: count(1),
    vcpus: count(1),
    disk: count(0),
    ephemeral: count(0).default(0),
  }),
});
export type CreateFlavorRequest = z.infer<typeof CreateFlavorRequest>['flavor'];

// Answers, as the OpenAPI description states them (lib/openapi), and the types views.ts builds.
const links = z.array(Link);

/** Nova's flavor ids are integers in Trove's flavor views; `str_id` always carries the string. */
export const FlavorView = z.looseObject({
  id: z.union([z.int(), z.string()]),
  links,
  name: z.string(),
  ram: z.int(),
  vcpus: z.int(),
  disk: z.int(),
  ephemeral: z.int(),
  str_id: z.string(),
});
export type FlavorView = z.infer<typeof FlavorView>;
export const FlavorsResponse = z.object({ flavors: z.array(FlavorView) });
export const FlavorResponse = z.object({ flavor: FlavorView });

/** Trove's VolumeTypeView (trove/volume_type/views.py): a Cinder volume type. */
export const VolumeTypeView = z.object({
  id: z.string(),
  name: z.string(),
  is_public: z.boolean(),
  description: z.string().nullable(),
});
export const VolumeTypesResponse = z.object({ volume_types: z.array(VolumeTypeView) });
export type VolumeTypesResponse = z.infer<typeof VolumeTypesResponse>;

/** A version as users see it; admins also see what an operator set. */
export const VersionView = z.looseObject({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  links,
  /** The datastore's id, left out where the version is listed inside its datastore. */
  datastore: z.string().optional(),
  active: z.boolean().optional(),
  packages: z.array(z.string()).optional(),
  image: z.string().nullable().optional(),
  image_tags: z.array(z.string()).optional(),
});
export type VersionView = z.infer<typeof VersionView>;
export const DatastoreVersionsResponse = z.object({ versions: z.array(VersionView) });
export const DatastoreVersionResponse = z.object({ version: VersionView });

export const DatastoreView = z.looseObject({
  id: z.string(),
  name: z.string(),
  links,
  versions: z.array(VersionView),
  default_version: z.string().optional(),
});
export type DatastoreView = z.infer<typeof DatastoreView>;
export const DatastoresResponse = z.object({ datastores: z.array(DatastoreView) });
export const DatastoreResponse = z.object({ datastore: DatastoreView });

/** The management view: everything an operator set, and whether it is its datastore's default. */
export const MgmtVersionView = z.looseObject({
  id: z.string(),
  name: z.string(),
  datastore_id: z.string(),
  datastore_name: z.string(),
  datastore_manager: z.string(),
  image: z.string().nullable(),
  image_tags: z.array(z.string()),
  packages: z.array(z.string()),
  active: z.boolean(),
  default: z.boolean(),
  version: z.string(),
});
export type MgmtVersionView = z.infer<typeof MgmtVersionView>;
export const MgmtVersionsResponse = z.object({ versions: z.array(MgmtVersionView) });
export const MgmtVersionResponse = z.object({ version: MgmtVersionView });
