import { getDatastoreVersion } from '../catalog/index.ts';
import { config } from '../config.ts';
import { loadReadyInstance } from '../databases/instance.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest } from '../errors.ts';
import { callGuest } from '../guest/calls.ts';
import type { Caller } from '../http/auth.ts';
import type { InstanceItem } from '../instances/model.ts';
import { dropApplication, recordApplications } from './applications.ts';
import { openContents } from './contents.ts';
import { ALL_TENANTS, type InstanceModuleRecord, type ModuleItem } from './model.ts';
import { findModuleAnywhere, getModuleItem, modulesOfPartition } from './repository.ts';
import type { GuestModuleView } from './schemas.ts';
import { loadModule } from './service.ts';
import { moduleView } from './views.ts';

// Trove's instance module routes (trove/instance/service.py module_list, module_apply,
// module_remove): guest calls, the guest being where modules are applied and what it recorded
// being the truth about an instance's modules.

function load(caller: Caller, instanceId: string): Promise<InstanceItem> {
  return loadReadyInstance(caller.projectId, instanceId, { redis: 'root' });
}

const call = (item: InstanceItem, method: string, args: Record<string, unknown>, secret?: object) =>
  callGuest(item, method, args, {
    timeoutSeconds: config.callHighTimeoutSeconds,
    ...(secret ? { secret: secret as Record<string, unknown> } : {}),
  });

/** `GET /instances/{id}/modules`: what the guest has applied (Trove asks it with or without from_guest). */
export async function listInstanceModules(
  caller: Caller,
  instanceId: string,
  includeContents: boolean,
): Promise<GuestModuleView[]> {
  const item = await load(caller, instanceId);
  return (await call(item, 'module_list', {
    include_contents: includeContents,
    is_admin: caller.isAdmin,
  })) as GuestModuleView[];
}

/**
 * Trove's Modules.load_by_ids: the caller's project's modules and those of all tenants (an admin's:
 * any); an id that is none of these is left out, as Trove does.
 */
async function loadByIds(
  caller: Pick<Caller, 'projectId' | 'isAdmin'>,
  ids: string[],
): Promise<ModuleItem[]> {
  const found = new Map<string, ModuleItem>();
  for (const id of new Set(ids)) {
    const item = caller.isAdmin
      ? await findModuleAnywhere(id)
      : ((await getModuleItem(caller.projectId, id)) ?? (await getModuleItem(ALL_TENANTS, id)));
    if (item) found.set(id, item);
  }
  return [...found.values()];
}

/** Trove's Modules.validate: a module for another datastore or version cannot be applied. */
function checkDatastore(modules: ModuleItem[], datastoreId: string | undefined, versionId: string): void {
  for (const m of modules) {
    if (m.datastore_id && m.datastore_id !== datastoreId) {
      throw new BadRequest(
        `The module is invalid: Module '${m.name}' cannot be applied  (Wrong datastore '${m.datastore_id}' - expected '${datastoreId}')`,
      );
    }
    if (m.datastore_version_id && m.datastore_version_id !== versionId) {
      throw new BadRequest(
        `The module is invalid: Module '${m.name}' cannot be applied  (Wrong datastore version '${m.datastore_version_id}' - expected '${versionId}')`,
      );
    }
  }
}

/** A module as the guest gets it: Trove's view, the datastore by name, which the guest compares with its manager. */
function guestModule(m: ModuleItem) {
  return {
    ...moduleView(m),
    datastore: m.datastore_name,
    datastore_version: m.datastore_version_name,
    tenant: m.tenant_id,
  };
}

/** With the contents, which travel sealed with the guest's key inside the signed order. */
export function guestModuleOrders(modules: ModuleItem[]) {
  return Promise.all(modules.map(async (m) => ({ ...guestModule(m), contents: await openContents(m) })));
}

export async function applyModules(
  caller: Caller,
  instanceId: string,
  ids: string[],
): Promise<GuestModuleView[]> {
  const item = await load(caller, instanceId);
  const modules = await loadByIds(caller, ids);
  const version = await getDatastoreVersion(item.datastore.version_id);
  checkDatastore(modules, version?.datastore_id, item.datastore.version_id);
  const results = (await call(
    item,
    'module_apply',
    {},
    { modules: await guestModuleOrders(modules) },
  )) as GuestModuleView[];
  await recordApplications(item, modules, troveTime());
  return results;
}

/** `DELETE /instances/{id}/modules/{module_id}`: the guest removes it, then the record goes. */
export async function removeModule(caller: Caller, instanceId: string, moduleId: string): Promise<void> {
  const item = await load(caller, instanceId);
  const module = await loadModule(caller, moduleId);
  await call(item, 'module_remove', { module: guestModule(module) });
  await dropApplication(item, moduleId);
}

/** Trove's Modules.load_auto_apply: the project's and all tenants' auto-apply modules for this datastore and version. */
async function autoApplyModules(
  projectId: string,
  datastoreId: string,
  versionId: string,
): Promise<ModuleItem[]> {
  const candidates = [...(await modulesOfPartition(projectId)), ...(await modulesOfPartition(ALL_TENANTS))];
  return candidates.filter(
    (m) =>
      m.auto_apply &&
      (!m.datastore_id || m.datastore_id === datastoreId) &&
      (!m.datastore_version_id || m.datastore_version_id === versionId),
  );
}

/** The modules of one prepare travel in one signed order (SQS: 256 KB), sealed like the users' passwords. */
const MAX_PREPARE_MODULES_CHARS = 160 * 1024;

/**
 * Trove's Instance.create: the modules named in the request (load_by_ids) and the auto-apply
 * ones, checked against the datastore, with their contents for prepare and the records of their
 * application, which Trove writes at create.
 */
export async function modulesForCreate(
  caller: Pick<Caller, 'projectId' | 'isAdmin'>,
  ids: string[],
  datastoreId: string,
  versionId: string,
  now: string,
) {
  const modules = await loadByIds(caller, ids);
  for (const m of await autoApplyModules(caller.projectId, datastoreId, versionId)) {
    if (!modules.some((n) => n.id === m.id)) modules.push(m);
  }
  checkDatastore(modules, datastoreId, versionId);
  const orders = await guestModuleOrders(modules);
  const chars = orders.reduce((sum, o) => sum + o.contents.length, 0);
  if (chars > MAX_PREPARE_MODULES_CHARS) {
    throw new BadRequest(
      `The modules' contents together exceed ${MAX_PREPARE_MODULES_CHARS} characters of base64.`,
    );
  }
  const records: Record<string, InstanceModuleRecord> = Object.fromEntries(
    modules.map((m) => [m.id, { md5: m.md5, created: now, updated: now }]),
  );
  return { orders, records };
}
