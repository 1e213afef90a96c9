import type { Caller } from '../http/auth.ts';
import type { InstanceItem } from '../instances/model.ts';
import { applicationsByMd5, instancesWithModule } from './applications.ts';
import type { ModuleInstanceCount } from './schemas.ts';
import { loadModule } from './service.ts';

/**
 * Trove's `GET /modules/{id}/instances`: the caller's project's instances that have the module,
 * or (count_only) one row per md5 applied, `current` when it is the module's md5 now.
 */
export async function moduleInstances(
  caller: Caller,
  moduleId: string,
  countOnly: boolean,
): Promise<{ kind: 'count'; rows: ModuleInstanceCount[] } | { kind: 'list'; instances: InstanceItem[] }> {
  const module = await loadModule(caller, moduleId);
  if (!countOnly) return { kind: 'list', instances: await instancesWithModule(caller.projectId, module.id) };
  const rows = (await applicationsByMd5(module.id)).map((g) => ({
    module_id: module.id,
    module_name: module.name,
    module_md5: g.md5,
    instance_count: g.count,
    min_updated_date: g.min_updated,
    max_updated_date: g.max_updated,
    current: g.md5 === module.md5,
  }));
  return { kind: 'count', rows };
}
