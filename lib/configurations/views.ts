import { resourceLinks } from '../instances/views.ts';
import type { ConfigurationItem } from './model.ts';
import type { ConfigurationDetailView, ConfigurationView } from './schemas.ts';

/** Trove's ConfigurationView (list items): no values, no instance count. */
export function configurationSummary(item: ConfigurationItem): ConfigurationView {
  return {
    id: item.id,
    name: item.name,
    // Trove shows a group created without one as null.
    description: item.description ?? null,
    created: item.created,
    updated: item.updated,
    datastore_name: item.datastore.type,
    datastore_version_id: item.datastore.version_id,
    datastore_version_name: item.datastore.version,
  };
}

/** Trove's DetailedConfigurationView: values (password-like ones masked) and the instance count. */
export function configurationDetail(item: ConfigurationItem, instanceCount: number): ConfigurationDetailView {
  const values = Object.fromEntries(
    Object.entries(item.values).map(([k, v]) => [k, /password/i.test(k) ? '***' : v]),
  );
  return {
    ...configurationSummary(item),
    values,
    instance_count: instanceCount,
    datastore_version_number: item.datastore.version_number,
  };
}

export function configurationRef(item: ConfigurationItem, base: string) {
  return {
    id: item.id,
    name: item.name,
    links: resourceLinks(base, item.project_id, 'configurations', item.id),
  };
}
