import { resourceLinks } from '../instances/views.ts';
import type { DatastoreView, FlavorView, MgmtVersionView, VersionView } from './schemas.ts';
import type { Datastore, DatastoreVersion, Flavor } from './types.ts';

// Trove's views (trove/datastore/views.py, trove/flavor/views.py,
// trove/extensions/mgmt/datastores/views.py), key for key and in the same order.

export interface CatalogViewContext {
  base: string;
  projectId: string;
  isAdmin: boolean;
}

/** A version as users see it; admins also see what an operator set (active, image, packages). */
export function versionView(
  v: DatastoreVersion,
  ctx: CatalogViewContext,
  includeDatastore = true,
): VersionView {
  const view: VersionView = {
    id: v.id,
    name: v.name,
    version: v.version,
    links: resourceLinks(ctx.base, ctx.projectId, 'datastores/versions', v.id),
  };
  if (includeDatastore) view.datastore = v.datastore_id;
  if (ctx.isAdmin) {
    view.active = v.active;
    view.packages = v.packages;
    view.image = v.image ?? null;
    view.image_tags = v.image_tags ?? [];
  }
  return view;
}

/** A datastore with the versions given (callers pick active ones or all) and its default. */
export function datastoreView(
  ds: Datastore,
  versions: DatastoreVersion[],
  ctx: CatalogViewContext,
): DatastoreView {
  const view: DatastoreView = {
    id: ds.id,
    name: ds.name,
    links: resourceLinks(ctx.base, ctx.projectId, 'datastores', ds.id),
    versions: versions.map((v) => versionView(v, ctx, false)),
  };
  if (ds.default_version_id) view.default_version = ds.default_version_id;
  return view;
}

/** Nova's flavor ids are integers in Trove's flavor views; `str_id` always carries the string. */
export function flavorView(f: Flavor, ctx: Omit<CatalogViewContext, 'isAdmin'>): FlavorView {
  return {
    id: /^\d+$/.test(f.id) && Number.isSafeInteger(Number(f.id)) ? Number(f.id) : f.id,
    links: resourceLinks(ctx.base, ctx.projectId, 'flavors', f.id),
    name: f.name,
    ram: f.ram,
    vcpus: f.vcpus,
    disk: f.disk,
    ephemeral: f.ephemeral,
    str_id: f.id,
  };
}

/** The management view: everything an operator set, and whether it is its datastore's default. */
export function mgmtVersionView(v: DatastoreVersion, defaultVersionId: string | undefined): MgmtVersionView {
  return {
    id: v.id,
    name: v.name,
    datastore_id: v.datastore_id,
    datastore_name: v.datastore_name,
    datastore_manager: v.manager,
    image: v.image ?? null,
    image_tags: v.image_tags ?? [],
    packages: v.packages,
    active: v.active,
    default: v.id === defaultVersionId,
    version: v.version,
  };
}
