import { DatastoreModel, FlavorModel, type Kind, keyOf, VersionModel } from './model.ts';
import type { Datastore, DatastoreVersion, Flavor } from './types.ts';

// Reads of the catalog. Nothing is cached between invocations: admins change the catalog and
// expect the next request to see it, and each read is one small strongly consistent Query.

type Plain = Record<string, unknown>;

async function all(model: typeof DatastoreModel, kind: Kind): Promise<Plain[]> {
  const items = await model.query('kind').eq(kind).consistent().all().exec();
  return items.map((item) => item.toJSON() as Plain);
}

function toDatastore(item: Plain): Datastore {
  const ds: Datastore = { id: String(item.id), name: String(item.name) };
  if (typeof item.default_version_id === 'string') ds.default_version_id = item.default_version_id;
  return ds;
}

function toVersion(item: Plain): DatastoreVersion {
  const v: DatastoreVersion = {
    id: String(item.id),
    datastore_id: String(item.datastore_id),
    datastore_name: String(item.datastore_name),
    name: String(item.name),
    version: String(item.version),
    manager: String(item.manager),
    active: item.active === true,
    packages: Array.isArray(item.packages) ? item.packages.map(String) : [],
  };
  if (typeof item.image === 'string') v.image = item.image;
  if (Array.isArray(item.image_tags)) v.image_tags = item.image_tags.map(String);
  return v;
}

function toFlavor(item: Plain): Flavor {
  return {
    id: String(item.id),
    name: String(item.name),
    ram: Number(item.ram),
    vcpus: Number(item.vcpus),
    disk: Number(item.disk),
    ephemeral: Number(item.ephemeral ?? 0),
  };
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

/** Nova lists flavors in id order; numeric ids sort as numbers. */
export function flavorOrder(a: Flavor, b: Flavor): number {
  return a.id.localeCompare(b.id, 'en', { numeric: true });
}

export async function loadDatastores(): Promise<Datastore[]> {
  return (await all(DatastoreModel, 'datastore')).map(toDatastore).sort(byName);
}

export async function loadVersions(): Promise<DatastoreVersion[]> {
  return (await all(VersionModel, 'version'))
    .map(toVersion)
    .sort((a, b) => a.datastore_name.localeCompare(b.datastore_name) || byName(a, b));
}

export async function loadVersion(id: string): Promise<DatastoreVersion | undefined> {
  const item = await VersionModel.get(keyOf('version', id), { consistent: true });
  return item ? toVersion(item.toJSON() as Plain) : undefined;
}

export async function loadFlavors(): Promise<Flavor[]> {
  return (await all(FlavorModel, 'flavor')).map(toFlavor).sort(flavorOrder);
}

export async function loadFlavor(id: string): Promise<Flavor | undefined> {
  const item = await FlavorModel.get(keyOf('flavor', id), { consistent: true });
  return item ? toFlavor(item.toJSON() as Plain) : undefined;
}
