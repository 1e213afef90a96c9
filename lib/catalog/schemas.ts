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

// Answers, as the OpenAPI description states them (lib/openapi).
const links = z.array(Link);
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
