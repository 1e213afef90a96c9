import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { idRef, safeText } from '../validation.ts';

// Trove's module routes (TROVE_API.md §8.4, trove/common/apischema.py `module`): the request
// bodies and the views. Trove's flags are integers 0 or 1 (its `boolean_string`), not booleans.

const flag = z.union([z.literal(0), z.literal(1)]).optional();
/** Trove's non_empty_string: 1..255 characters with at least one letter or digit. */
const nonEmpty = safeText(255)
  .min(1)
  .regex(/[0-9a-zA-Z]/, 'must contain a letter or a digit');
/**
 * Trove keeps any size in a text column; here the sealed contents live in one DynamoDB item
 * (400 KB at most), and travel in one signed SQS order (256 KB), so the base64 stays below that.
 */
const MAX_CONTENTS_CHARS = 160 * 1024;
/** Base64, as python-troveclient sends a module's file (its encode_data). */
const contents = z
  .string()
  .min(1)
  .max(MAX_CONTENTS_CHARS)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

const datastore = z.object({ type: nonEmpty.optional(), version: nonEmpty.optional() });

export const CreateModuleRequest = z.object({
  module: z.object({
    name: nonEmpty,
    module_type: nonEmpty,
    contents,
    description: nonEmpty.optional(),
    datastore: datastore.optional(),
    auto_apply: flag,
    all_tenants: flag,
    visible: flag,
    live_update: flag,
    priority_apply: flag,
    apply_order: z.int().min(0).max(9).optional(),
    full_access: flag,
  }),
});
export type CreateModuleRequest = z.infer<typeof CreateModuleRequest>['module'];

/** Trove's update schema names the type `type`, as python-troveclient sends it. */
export const UpdateModuleRequest = z.object({
  module: z.object({
    name: nonEmpty.optional(),
    type: nonEmpty.optional(),
    contents: contents.optional(),
    description: nonEmpty.optional(),
    datastore: datastore.optional(),
    auto_apply: flag,
    all_tenants: flag,
    all_datastores: flag,
    all_datastore_versions: flag,
    visible: flag,
    live_update: flag,
    priority_apply: flag,
    apply_order: z.int().min(0).max(9).optional(),
    full_access: flag,
  }),
});
export type UpdateModuleRequest = z.infer<typeof UpdateModuleRequest>['module'];

/** `POST /instances/{id}/modules`: Trove's module_list, at least one `{id}`. */
export const ApplyModulesRequest = z.object({
  modules: z.array(z.object({ id: idRef() })).min(1),
});

/**
 * `PUT /modules/{id}/instances` (Trove's ModuleController.reapply, which has no schema and reads
 * these keys when present; python-troveclient sends the flags as 0/1 and the delay as
 * `batch_delay`). Bounded here: a count of instances, and a delay a Wait state can hold.
 */
export const ReapplyModuleRequest = z.object({
  reapply: z.object({
    md5: safeText(255).nullable().optional(),
    include_clustered: z.union([flag, z.boolean()]).optional(),
    batch_size: z.int().min(0).max(10_000).nullable().optional(),
    batch_delay: z.int().min(0).max(86_400).nullable().optional(),
    force: z.union([flag, z.boolean()]).optional(),
  }),
});
export type ReapplyModuleRequest = z.infer<typeof ReapplyModuleRequest>['reapply'];

/** Trove's ModuleView. */
export const ModuleView = z.looseObject({
  id: z.string(),
  name: z.string(),
  type: z.string(),
  description: z.string().nullable(),
  tenant_id: z.string().nullable(),
  tenant: z.string(),
  datastore_id: z.string().nullable(),
  datastore_version_id: z.string().nullable(),
  datastore: z.string(),
  datastore_version: z.string(),
  auto_apply: z.boolean(),
  priority_apply: z.boolean(),
  apply_order: z.int(),
  is_admin: z.boolean(),
  md5: z.string(),
  visible: z.boolean(),
  created: z.string(),
  updated: z.string(),
});
export type ModuleView = z.infer<typeof ModuleView>;

/** Trove's DetailedModuleView: with live_update and, on show, the instance count. */
export const DetailedModuleView = ModuleView.extend({
  live_update: z.boolean(),
  instance_count: z.int().optional(),
});
export type DetailedModuleView = z.infer<typeof DetailedModuleView>;

/** What the guest records for each module it applied (Trove's module_manager result). */
export const GuestModuleView = z.looseObject({
  id: z.string(),
  name: z.string(),
  type: z.string(),
  datastore: z.string(),
  datastore_version: z.string(),
  tenant: z.string(),
  md5: z.string(),
  status: z.string(),
  message: z.string().nullable(),
  created: z.string(),
  updated: z.string(),
  removed: z.string().nullable(),
  auto_apply: z.boolean(),
  visible: z.boolean(),
  is_admin: z.boolean(),
  contents: z.string().nullable(),
});
export type GuestModuleView = z.infer<typeof GuestModuleView>;

/** `count_only=true` of `GET /modules/{id}/instances`: one row per md5 applied. */
export const ModuleInstanceCount = z.looseObject({
  module_id: z.string(),
  module_name: z.string(),
  module_md5: z.string(),
  instance_count: z.int(),
  min_updated_date: z.string(),
  max_updated_date: z.string(),
  current: z.boolean(),
});
export type ModuleInstanceCount = z.infer<typeof ModuleInstanceCount>;

export const ModulesResponse = z.object({ modules: z.array(ModuleView) });
export const ModuleResponse = z.object({ module: DetailedModuleView });
export const GuestModulesResponse = z.object({ modules: z.array(GuestModuleView) });
export const ModuleInstancesResponse = z.object({
  instances: z.array(z.union([z.looseObject({ id: z.string() }), ModuleInstanceCount])),
  links: z.array(Link).optional(),
});
