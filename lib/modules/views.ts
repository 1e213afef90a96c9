import { MATCH_ALL, type ModuleItem } from './model.ts';
import type { DetailedModuleView, ModuleView } from './schemas.ts';

/** Trove's ModuleView: the ids, and for legibility the tenant and datastore names or 'all'. */
export function moduleView(m: ModuleItem): ModuleView {
  return {
    id: m.id,
    name: m.name,
    type: m.type,
    description: m.description,
    tenant_id: m.tenant_id,
    datastore_id: m.datastore_id,
    datastore_version_id: m.datastore_version_id,
    auto_apply: m.auto_apply,
    priority_apply: m.priority_apply,
    apply_order: m.apply_order,
    is_admin: m.is_admin,
    md5: m.md5,
    visible: m.visible,
    created: m.created,
    updated: m.updated,
    tenant: m.tenant_id ?? MATCH_ALL,
    datastore: m.datastore_name ?? MATCH_ALL,
    datastore_version: m.datastore_version_name ?? MATCH_ALL,
  };
}

/** Trove's DetailedModuleView: live_update, and on show how many instances have this md5. */
export function detailedModuleView(m: ModuleItem, instanceCount?: number): DetailedModuleView {
  return {
    ...moduleView(m),
    live_update: m.live_update,
    ...(instanceCount === undefined ? {} : { instance_count: instanceCount }),
  };
}
