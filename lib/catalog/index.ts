import { BadRequest } from '../errors.ts';
import { datastoreNotFound, findDatastore, flavorIdOf, matchVersion } from './match.ts';
import { loadDatastores, loadFlavor, loadVersion, loadVersions } from './store.ts';
import type { Datastore, DatastoreVersion, Flavor } from './types.ts';

// What the instance API asks of the catalog.
export type { Datastore, DatastoreVersion, Flavor } from './types.ts';

/** Trove's CONF.default_datastore: used when a create names no datastore type. */
function defaultDatastore(): string {
  return process.env.TROVELESS_DEFAULT_DATASTORE || 'mysql';
}

/**
 * Trove's `get_datastore_version(type, version, version_number)`: the datastore by id or name
 * (404 when unknown), then the named version or the datastore's default one (400 when unknown,
 * see versionNotFound), which must be active (400).
 */
export async function resolveDatastoreVersion(
  ref: { type?: string; version?: string; version_number?: string } | undefined,
): Promise<{ datastore: Datastore; version: DatastoreVersion }> {
  const type = ref?.type || defaultDatastore();
  const [datastores, allVersions] = await Promise.all([loadDatastores(), loadVersions()]);
  const datastore = findDatastore(datastores, type);
  if (!datastore) throw datastoreNotFound(type);
  const versions = allVersions.filter((v) => v.datastore_id === datastore.id);
  const wanted = ref?.version || ref?.version_number;
  let version: DatastoreVersion | undefined;
  if (wanted) {
    version = matchVersion(versions, wanted, ref?.version ? ref.version_number || undefined : undefined);
  } else {
    const id = datastore.default_version_id;
    if (!id) throw new BadRequest(`Default version for datastore '${datastore.name}' not found.`);
    version = matchVersion(versions, id);
  }
  if (!version.active) throw new BadRequest(`Datastore version '${version.name}' is not active.`);
  return { datastore, version };
}

/**
 * The flavor an instance create names, by id or href. Trove answers 400 (not 404) here: the
 * reference is a bad field of the request, not a missing resource of the URL.
 */
export async function getFlavor(ref: string | number | undefined | null): Promise<Flavor> {
  const id = flavorIdOf(ref);
  if (id === undefined) throw new BadRequest('Resource None cannot be found.');
  const flavor = await loadFlavor(id);
  if (!flavor) throw new BadRequest(`Resource ${id} cannot be found.`);
  return flavor;
}

/** A version by id, active or not: instances keep pointing at versions an admin deactivated. */
export async function getDatastoreVersion(id: string): Promise<DatastoreVersion | undefined> {
  return loadVersion(id);
}
