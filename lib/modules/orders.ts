import { BadRequest } from '../errors.ts';
import type { Caller } from '../http/auth.ts';
import { openContents } from './contents.ts';
import { ALL_TENANTS, type InstanceModuleRecord, type ModuleItem } from './model.ts';
import { findModuleAnywhere, getModuleItem, modulesOfPartition } from './repository.ts';
import { moduleView } from './views.ts';

// The modules an instance is to apply, as Trove chooses and checks them (load_by_ids,
// load_auto_apply, validate), and as the guest receives them (convert_modules_to_list). Instance
// create uses this without the guest-call code of instances.ts.

/**
 * Trove's Modules.load_by_ids: the caller's project's modules and those of all tenants (an admin's:
 * any); an id that is none of these is left out, as Trove does.
 */
export async function loadByIds(
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
export function checkDatastore(
  modules: ModuleItem[],
  datastoreId: string | undefined,
  versionId: string,
): void {
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
export function guestModule(m: ModuleItem) {
  return {
    ...moduleView(m),
    datastore: m.datastore_name,
    datastore_version: m.datastore_version_name,
    tenant: m.tenant_id,
  };
}

/** The modules of one order travel in one signed SQS message (256 KB), sealed like passwords. */
const MAX_ORDER_CONTENTS_CHARS = 160 * 1024;

/** With the contents, which travel sealed with the guest's key inside the signed order. */
export async function guestModuleOrders(modules: ModuleItem[]) {
  const orders = await Promise.all(
    modules.map(async (m) => ({ ...guestModule(m), contents: await openContents(m) })),
  );
  const chars = orders.reduce((sum, o) => sum + o.contents.length, 0);
  if (chars > MAX_ORDER_CONTENTS_CHARS) {
    throw new BadRequest(
      `The modules' contents together exceed ${MAX_ORDER_CONTENTS_CHARS} characters of base64.`,
    );
  }
  return orders;
}

/**
 * Trove's Instance.create: the modules named in the request (load_by_ids) and the auto-apply ones
 * (load_auto_apply), checked against the datastore, with their contents for prepare and the
 * records of their application, which Trove writes at create. The reads start here, before the
 * datastore is known: a create reads them beside the catalog (it waits on every read). The
 * function returned picks and checks them once the datastore is known; a failed read fails there,
 * in Trove's order of checks.
 */
export function modulesForCreate(caller: Pick<Caller, 'projectId' | 'isAdmin'>, ids: string[]) {
  const named = loadByIds(caller, ids);
  const candidates = Promise.all([modulesOfPartition(caller.projectId), modulesOfPartition(ALL_TENANTS)]);
  named.catch(() => {});
  candidates.catch(() => {});
  return async (datastoreId: string, versionId: string, now: string) => {
    const modules = [...(await named)];
    // Trove's Modules.load_auto_apply: the project's and all tenants' for this datastore and version.
    for (const m of (await candidates).flat()) {
      const applies =
        m.auto_apply &&
        (!m.datastore_id || m.datastore_id === datastoreId) &&
        (!m.datastore_version_id || m.datastore_version_id === versionId);
      if (applies && !modules.some((n) => n.id === m.id)) modules.push(m);
    }
    checkDatastore(modules, datastoreId, versionId);
    const orders = await guestModuleOrders(modules);
    const records: Record<string, InstanceModuleRecord> = Object.fromEntries(
      modules.map((m) => [m.id, { md5: m.md5, created: now, updated: now }]),
    );
    return { orders, records };
  };
}
