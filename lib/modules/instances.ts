import { getDatastoreVersion } from '../catalog/index.ts';
import { config } from '../config.ts';
import { loadReadyInstance } from '../databases/instance.ts';
import { troveTime } from '../dynamo.ts';
import { callGuest } from '../guest/calls.ts';
import type { Caller } from '../http/auth.ts';
import type { InstanceItem } from '../instances/model.ts';
import { dropApplication, recordApplications } from './applications.ts';
import { checkDatastore, guestModule, guestModuleOrders, loadByIds } from './orders.ts';
import { withReapplyErrors } from './reapply.ts';
import type { GuestModuleView } from './schemas.ts';
import { loadModule } from './service.ts';

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

/**
 * `GET /instances/{id}/modules`: what the guest has applied (Trove asks it with or without
 * from_guest), and a reapply that did not take (lib/modules/reapply.ts).
 */
export async function listInstanceModules(
  caller: Caller,
  instanceId: string,
  includeContents: boolean,
): Promise<GuestModuleView[]> {
  const item = await load(caller, instanceId);
  const results = (await call(item, 'module_list', {
    include_contents: includeContents,
    is_admin: caller.isAdmin,
  })) as GuestModuleView[];
  return withReapplyErrors(results, item.modules);
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
