import { NotFound } from '../errors.ts';
import { resolveDatastoreVersion } from './index.ts';
import { datastoreNotFound, findDatastore, matchVersion, versionNotFound } from './match.ts';
import { loadDatastores, loadFlavor, loadFlavors, loadVersion, loadVersions } from './store.ts';
import type { Datastore, DatastoreVersion, Flavor } from './types.ts';

// The catalog routes' reads (trove/datastore/service.py). Users see active versions only, and
// only datastores that have one; admins see everything in the listings, as in Trove.

export interface DatastoreWithVersions {
  datastore: Datastore;
  versions: DatastoreVersion[];
}

export async function listDatastores(isAdmin: boolean): Promise<DatastoreWithVersions[]> {
  const [datastores, versions] = await Promise.all([loadDatastores(), loadVersions()]);
  return datastores
    .map((datastore) => ({
      datastore,
      versions: versions.filter((v) => v.datastore_id === datastore.id && (isAdmin || v.active)),
    }))
    .filter((d) => isAdmin || d.versions.length > 0);
}

async function datastoreAndVersions(ref: string) {
  const [datastores, versions] = await Promise.all([loadDatastores(), loadVersions()]);
  const datastore = findDatastore(datastores, ref);
  if (!datastore) throw datastoreNotFound(ref);
  return { datastore, versions: versions.filter((v) => v.datastore_id === datastore.id) };
}

/** `GET /datastores/{id or name}`: its active versions, whoever asks (Trove's show). */
export async function showDatastore(ref: string): Promise<DatastoreWithVersions> {
  const { datastore, versions } = await datastoreAndVersions(ref);
  return { datastore, versions: versions.filter((v) => v.active) };
}

export async function listDatastoreVersions(ref: string, isAdmin: boolean): Promise<DatastoreVersion[]> {
  const { versions } = await datastoreAndVersions(ref);
  return versions.filter((v) => isAdmin || v.active);
}

/** A version by id or name within a datastore; shown even when inactive, as Trove does. */
export async function showDatastoreVersion(ref: string, versionRef: string): Promise<DatastoreVersion> {
  const { versions } = await datastoreAndVersions(ref);
  return matchVersion(versions, versionRef);
}

export async function showVersionById(id: string): Promise<DatastoreVersion> {
  const version = await loadVersion(id);
  if (!version) throw versionNotFound(id);
  return version;
}

/** For the management view, which says whether the version is its datastore's default. */
export async function showVersionWithDefault(id: string) {
  const [version, datastores] = await Promise.all([showVersionById(id), loadDatastores()]);
  const datastore = datastores.find((d) => d.id === version.datastore_id);
  return { version, defaultVersionId: datastore?.default_version_id };
}

/**
 * Flavors a version may run on: all of them, since no flavor is bound to a version here. The
 * version must resolve as a create would (so an inactive one is a 400), as Trove checks it.
 */
export async function flavorsForVersion(ref: string, versionRef: string): Promise<Flavor[]> {
  await resolveDatastoreVersion({ type: ref, version: versionRef });
  return loadFlavors();
}

export { loadFlavors as listFlavors };

/** `GET /flavors/{id}`: here an unknown id is a missing resource of the URL, so 404. */
export async function showFlavor(id: string): Promise<Flavor> {
  const flavor = await loadFlavor(id);
  if (!flavor) throw new NotFound(`Resource ${id} cannot be found.`);
  return flavor;
}
