import { logger } from '../logger.ts';
import { DatastoreModel, FlavorModel, isConditionFailure, VersionModel } from './model.ts';
import { seedDatastores, seedFlavors, seedVersions } from './seed-data.ts';

// Seeding only ever adds what is missing (a put conditioned on the item not existing): running
// it again, on every deploy, changes nothing an admin did: a deactivated version stays inactive,
// an edited flavor keeps its sizes, and nothing is deleted.

async function putIfAbsent(model: typeof DatastoreModel, item: Record<string, unknown>): Promise<boolean> {
  try {
    await model.create(item, { overwrite: false });
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

async function ensure(model: typeof DatastoreModel, kind: string, items: object[]): Promise<number> {
  const created = await Promise.all(items.map((item) => putIfAbsent(model, { kind, ...item })));
  return created.filter(Boolean).length;
}

export interface SeedCounts {
  datastores: number;
  versions: number;
  flavors: number;
}

/** Makes sure the built-in catalog is present; answers how many of each kind it holds. */
export async function seedCatalog(): Promise<SeedCounts> {
  // Versions before datastores, so no datastore ever points at a default version not yet written.
  const versions = await ensure(VersionModel, 'version', seedVersions);
  const [datastores, flavors] = await Promise.all([
    ensure(DatastoreModel, 'datastore', seedDatastores),
    ensure(FlavorModel, 'flavor', seedFlavors),
  ]);
  logger.info('catalog seeded', { created: { datastores, versions, flavors } });
  return { datastores: seedDatastores.length, versions: seedVersions.length, flavors: seedFlavors.length };
}
