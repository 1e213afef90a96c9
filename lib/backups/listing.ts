/** Who asks: their project, and whether they may look beyond it. */
interface Caller {
  projectId: string;
  isAdmin: boolean;
}

import { datastoreNotFound, findDatastore } from '../catalog/match.ts';
import { loadDatastores } from '../catalog/store.ts';
import { Forbidden } from '../errors.ts';
import { loadInstance } from '../instances/operations.ts';
import type { Page, PageOf } from '../paging.ts';
import type { BackupItem } from './model.ts';
import { projectBackups } from './repository.ts';
import { putStrategy } from './strategies.ts';

// Trove's backup lists and strategy scopes: who may see which project's backups, and a page of
// them newest first.

export interface BackupFilter {
  all_projects?: string;
  project_id?: string;
  instance_id?: string;
  datastore?: string;
}

/** `GET /backups`: the caller's project's, or (admins only) another project's. */
export async function listBackups(
  caller: Caller,
  filter: BackupFilter,
  page: Page,
): Promise<PageOf<BackupItem>> {
  if ((filter.all_projects || filter.project_id) && !caller.isAdmin) {
    throw new Forbidden('Only admins may list other projects’ backups.');
  }
  let items = await projectBackups(filter.project_id ?? caller.projectId);
  if (filter.instance_id) items = items.filter((b) => b.instance_id === filter.instance_id);
  if (filter.datastore) {
    // Trove's Datastore.load(id or name): an unknown datastore is its 404, not an empty list.
    const datastore = findDatastore(await loadDatastores(), filter.datastore);
    if (!datastore) throw datastoreNotFound(filter.datastore);
    items = items.filter((b) => b.datastore.type === datastore.name);
  }
  return newestFirst(items, page);
}

/** `GET /instances/{id}/backups`. */
export async function instanceBackups(projectId: string, instanceId: string, page: Page) {
  const instance = await loadInstance(projectId, instanceId);
  return newestFirst(
    (await projectBackups(projectId)).filter((b) => b.instance_id === instance.id),
    page,
  );
}

/** Newest first, then by id; the marker is the id of the last backup of the previous page. */
function newestFirst(items: BackupItem[], page: Page): PageOf<BackupItem> {
  const sorted = [...items].sort((a, b) =>
    a.created === b.created ? (a.id < b.id ? -1 : 1) : a.created < b.created ? 1 : -1,
  );
  const start = page.marker ? sorted.findIndex((b) => b.id === page.marker) + 1 : 0;
  const slice = page.marker && start === 0 ? [] : sorted.slice(start, start + page.limit);
  const last = slice[slice.length - 1];
  return { items: slice, nextMarker: last && start + page.limit < sorted.length ? last.id : undefined };
}

/** Whose strategies a request names: another project's only for admins. */
export function strategyScope(caller: Caller, filter: { project_id?: string; instance_id?: string }) {
  if (filter.project_id && filter.project_id !== caller.projectId && !caller.isAdmin) {
    throw new Forbidden('Only admins may manage other projects’ backup strategies.');
  }
  return { project: filter.project_id ?? caller.projectId, instance: filter.instance_id };
}

/** `POST /backup_strategies`: an upsert for the project, or for one of its instances. */
export async function createStrategy(
  projectId: string,
  s: { swift_container: string; instance_id?: string },
) {
  if (s.instance_id) await loadInstance(projectId, s.instance_id);
  const strategy = {
    project_id: projectId,
    instance_id: s.instance_id ?? '',
    backend: 'swift' as const,
    swift_container: s.swift_container,
  };
  await putStrategy(strategy);
  return strategy;
}
