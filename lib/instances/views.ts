import type { InstanceItem } from './model.ts';

/** Trove's two links per resource: a versioned self link and an unversioned bookmark. */
export function resourceLinks(base: string, projectId: string, collection: string, id: string) {
  return [
    { rel: 'self', href: `${base}/v1.0/${projectId}/${collection}/${id}` },
    { rel: 'bookmark', href: `${base}/${projectId}/${collection}/${id}` },
  ];
}

export function instanceSummary(item: InstanceItem, base: string) {
  return {
    id: item.id,
    name: item.name,
    links: resourceLinks(base, item.project_id, 'instances', item.id),
  };
}
