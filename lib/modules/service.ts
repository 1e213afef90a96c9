import { randomUUID } from 'node:crypto';
import { resolveDatastoreVersion } from '../catalog/index.ts';
import { datastoreNotFound, findDatastore } from '../catalog/match.ts';
import { loadDatastores } from '../catalog/store.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, Forbidden, NotFound } from '../errors.ts';
import type { Caller } from '../http/auth.ts';
import { countApplications } from './applications.ts';
import { sealContents } from './contents.ts';
import { ALL_TENANTS, MATCH_ALL, MODULE_TYPES, type ModuleItem } from './model.ts';
import {
  allModules,
  createModuleItem,
  deleteModuleItem,
  findModuleAnywhere,
  getModuleItem,
  modulesOfPartition,
  replaceModuleItem,
} from './repository.ts';
import type { CreateModuleRequest, UpdateModuleRequest } from './schemas.ts';

// Trove's module API (trove/module/service.py and models.py): who may set which option, the
// datastore a module is for, and no change under an instance that applied it.

/** A flag as Trove prints it in its messages: the request's 0/1, or a stored boolean as Python's. */
type Flag = number | boolean | undefined;
const shown = (v: Flag) => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));

/**
 * Trove's Module.validate_action: the admin-only options a module has (all tenants, auto apply,
 * hidden, priority, full access). A non-admin with any of them is refused (403
 * ModuleAccessForbidden); full access with any other of them is a contradiction (400).
 */
export function adminOptions(
  caller: Pick<Caller, 'isAdmin'>,
  action: string,
  o: { tenantId: string | null; autoApply: Flag; visible: Flag; priorityApply: Flag; fullAccess: Flag },
): string | undefined {
  const options: string[] = [];
  if (o.tenantId === null) options.push(`Tenant: ${MATCH_ALL}`);
  if (o.autoApply) options.push(`Auto: ${shown(o.autoApply)}`);
  if (!o.visible) options.push(`Visible: ${shown(o.visible)}`);
  if (o.priorityApply) options.push(`Priority: ${shown(o.priorityApply)}`);
  if (o.fullAccess !== undefined) {
    if (o.fullAccess && options.length) {
      throw new BadRequest(
        `The following values are invalid: Cannot make module full access: (${options.join(', ')}).`,
      );
    }
    options.push(`Full Access: ${shown(o.fullAccess)}`);
  }
  const text = options.length ? `(${options.join(', ')})` : undefined;
  if (text && !caller.isAdmin) {
    throw new Forbidden(`You must be admin to ${action} a module with these options. ${text}`);
  }
  return text;
}

export function checkModuleType(type: string): string {
  const lower = type.toLowerCase();
  if (!MODULE_TYPES.includes(lower)) throw new NotFound(`Module type '${type}' was not found.`);
  return lower;
}

/** Trove's get_datastore_or_version: a datastore alone, or with a version; a version alone is refused. */
async function datastoreOrVersion(type: string | null | undefined, version: string | null | undefined) {
  if (!type) {
    if (version) throw new BadRequest(`Datastore 'None' has no version '${version}'.`);
    return {
      datastore_id: null,
      datastore_name: null,
      datastore_version_id: null,
      datastore_version_name: null,
    };
  }
  if (version) {
    const found = await resolveDatastoreVersion({ type, version });
    return {
      datastore_id: found.datastore.id,
      datastore_name: found.datastore.name,
      datastore_version_id: found.version.id,
      datastore_version_name: found.version.name,
    };
  }
  const datastore = findDatastore(await loadDatastores(), type);
  if (!datastore) throw datastoreNotFound(type);
  return {
    datastore_id: datastore.id,
    datastore_name: datastore.name,
    datastore_version_id: null,
    datastore_version_name: null,
  };
}

const notFound = (id: string) => new NotFound(`Module with ID ${id} could not be found.`);

/**
 * Trove's Module.load: an admin finds any module; anyone else their project's visible ones and
 * the visible modules of all tenants.
 */
export async function loadModule(caller: Caller, id: string): Promise<ModuleItem> {
  if (caller.isAdmin) return (await findModuleAnywhere(id)) ?? Promise.reject(notFound(id));
  for (const partition of [caller.projectId, ALL_TENANTS]) {
    const item = await getModuleItem(partition, id);
    if (item?.visible) return item;
  }
  throw notFound(id);
}

/** Trove's Modules.load: `datastore` is a datastore's name or id, or 'all' for modules of every datastore. */
export async function listModules(caller: Caller, datastore: string | undefined): Promise<ModuleItem[]> {
  let datastoreId: string | null | undefined;
  if (datastore) {
    if (datastore.toLowerCase() === MATCH_ALL) datastoreId = null;
    else {
      const found = findDatastore(await loadDatastores(), datastore);
      if (!found) throw datastoreNotFound(datastore);
      datastoreId = found.id;
    }
  }
  const items = caller.isAdmin
    ? await allModules()
    : [...(await modulesOfPartition(caller.projectId)), ...(await modulesOfPartition(ALL_TENANTS))].filter(
        (m) => m.visible,
      );
  return items
    .filter((m) => datastoreId === undefined || m.datastore_id === datastoreId)
    .sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
}

export async function createModule(caller: Caller, req: CreateModuleRequest): Promise<ModuleItem> {
  const type = checkModuleType(req.module_type);
  const tenantId = req.all_tenants ? null : caller.projectId;
  const autoApply = req.auto_apply ?? 0;
  const visible = req.visible ?? 1;
  const priorityApply = req.priority_apply ?? 0;
  adminOptions(caller, 'create', {
    tenantId,
    autoApply,
    visible,
    priorityApply,
    fullAccess: req.full_access,
  });
  const datastore = await datastoreOrVersion(req.datastore?.type, req.datastore?.version);
  const now = troveTime();
  const item: ModuleItem = {
    project_id: tenantId ?? ALL_TENANTS,
    id: randomUUID(),
    name: req.name,
    type,
    description: req.description ?? null,
    tenant_id: tenantId,
    ...datastore,
    auto_apply: Boolean(autoApply),
    visible: Boolean(visible),
    live_update: Boolean(req.live_update),
    priority_apply: Boolean(priorityApply),
    apply_order: req.apply_order ?? 5,
    // A module an admin made is an admin module, unless made for full access.
    is_admin: caller.isAdmin && !req.full_access,
    ...(await sealContents(req.contents)),
    created: now,
    updated: now,
  };
  await createModuleItem(item);
  return item;
}

/**
 * Trove's enforce_live_update: a module applied to an instance (that still has it at this md5)
 * may be neither changed nor deleted unless it was made `live_update`.
 */
async function enforceLiveUpdate(item: ModuleItem): Promise<void> {
  if (item.live_update) return;
  if ((await countApplications(item.id, item.md5)) > 0) {
    throw new Forbidden(
      "A module cannot be deleted or its contents modified if it has been applied to a non-terminated instance, unless the module has been marked as 'live_update.' Please remove the module from all non-terminated instances and try again.",
    );
  }
}

export async function updateModule(
  caller: Caller,
  id: string,
  req: UpdateModuleRequest,
): Promise<ModuleItem> {
  const before = await loadModule(caller, id);
  if (req.datastore?.type !== undefined && req.all_datastores !== undefined) {
    throw new BadRequest('The module is invalid: You cannot set a datastore and specify --all_datastores');
  }
  if (req.datastore?.version !== undefined && req.all_datastore_versions !== undefined) {
    throw new BadRequest(
      'The module is invalid: You cannot set a datastore version and specify --all_datastore_versions',
    );
  }
  await enforceLiveUpdate(before);
  if (before.is_admin && !caller.isAdmin) {
    throw new Forbidden(
      'You must be admin to update a module with these options. (Module is an admin module)',
    );
  }
  const tenantId =
    req.all_tenants === undefined ? before.tenant_id : req.all_tenants ? null : caller.projectId;
  const autoApply: Flag = req.auto_apply ?? before.auto_apply;
  const visible: Flag = req.visible ?? before.visible;
  const priorityApply: Flag = req.priority_apply ?? before.priority_apply;
  const options = adminOptions(caller, 'update', {
    tenantId,
    autoApply,
    visible,
    priorityApply,
    fullAccess: req.full_access,
  });
  // Trove names the datastore by id or name here; "all_datastores" (present at all) clears it.
  const datastoreRef = req.all_datastores !== undefined ? null : (req.datastore?.type ?? before.datastore_id);
  const versionRef =
    req.all_datastore_versions !== undefined ? null : (req.datastore?.version ?? before.datastore_version_id);
  const datastore = await datastoreOrVersion(datastoreRef, versionRef);
  const after: ModuleItem = {
    ...before,
    project_id: tenantId ?? ALL_TENANTS,
    name: req.name ?? before.name,
    // Trove's update schema and python-troveclient call it `type`.
    type: req.type === undefined ? before.type : checkModuleType(req.type),
    description: req.description ?? before.description,
    tenant_id: tenantId,
    ...datastore,
    auto_apply: Boolean(autoApply),
    visible: Boolean(visible),
    live_update: req.live_update === undefined ? before.live_update : Boolean(req.live_update),
    priority_apply: Boolean(priorityApply),
    apply_order: req.apply_order ?? before.apply_order,
    is_admin: req.full_access !== undefined ? !req.full_access : before.is_admin || Boolean(options),
    ...(req.contents !== undefined && req.contents !== '' ? await changedContents(before, req.contents) : {}),
    updated: troveTime(),
  };
  await replaceModuleItem(before, after);
  return after;
}

async function changedContents(before: ModuleItem, contents: string) {
  const sealed = await sealContents(contents);
  return sealed.md5 === before.md5 ? {} : sealed;
}

export async function deleteModule(caller: Caller, id: string): Promise<void> {
  const item = await loadModule(caller, id);
  adminOptions(caller, 'delete', {
    tenantId: item.tenant_id,
    autoApply: item.auto_apply,
    visible: item.visible,
    priorityApply: item.priority_apply,
    fullAccess: undefined,
  });
  await enforceLiveUpdate(item);
  await deleteModuleItem(item);
}
