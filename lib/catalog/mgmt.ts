import { randomUUID } from 'node:crypto';
import { dynamoose } from '../db.ts';
import { BadRequest, NotFound } from '../errors.ts';
import { datastoreId, datastoreVersionId } from './ids.ts';
import { datastoreNotFound, findDatastore, versionNotFound } from './match.ts';
import { DatastoreModel, isConditionFailure, keyOf, VersionModel } from './model.ts';
import type { CreateDatastoreVersionRequest, UpdateDatastoreVersionRequest } from './schemas.ts';
import { loadDatastores, loadVersions } from './store.ts';
import type { DatastoreVersion } from './types.ts';
import { versionUsedBy } from './usage.ts';

// Trove's management of datastore versions (trove/extensions/mgmt/datastores/service.py). Each
// change is one DynamoDB transaction: the version and its datastore's default move together, or
// nothing is written.

const exists = () => new dynamoose.Condition('id').exists();

function alreadyExists(name: string, version: string): BadRequest {
  return new BadRequest(
    `A datastore version with the name '${name}' and version '${version}' already exists.`,
  );
}

async function transact(writes: Array<Promise<unknown>>, onConditionFailure: () => Error): Promise<void> {
  if (!writes.length) return;
  try {
    await dynamoose.transaction(writes as Parameters<typeof dynamoose.transaction>[0]);
  } catch (err) {
    throw isConditionFailure(err) ? onConditionFailure() : err;
  }
}

/** Adds a version, creating its datastore when the name is new (as Trove does). */
export async function createDatastoreVersion(req: CreateDatastoreVersionRequest): Promise<DatastoreVersion> {
  const [datastores, versions] = await Promise.all([loadDatastores(), loadVersions()]);
  const found = findDatastore(datastores, req.datastore_name);
  const dsName = found?.name ?? req.datastore_name;
  const number = req.version ?? req.name;
  const siblings = versions.filter((v) => v.datastore_id === found?.id);
  if (siblings.some((v) => v.name === req.name && v.version === number))
    throw alreadyExists(req.name, number);

  // Name-based like the seeded ids, unless a renamed version already holds that id.
  let id = datastoreVersionId(dsName, req.name, number);
  if (versions.some((v) => v.id === id)) id = randomUUID();
  const version: DatastoreVersion = {
    id,
    datastore_id: found?.id ?? datastoreId(dsName),
    datastore_name: dsName,
    name: req.name,
    version: number,
    manager: req.datastore_manager,
    active: req.active,
    packages: req.packages ?? [],
    ...(req.image ? { image: req.image } : {}),
    ...(req.image_tags ? { image_tags: req.image_tags } : {}),
  };
  const writes: Array<Promise<unknown>> = [
    VersionModel.transaction.create({ kind: 'version', ...version }, { overwrite: false }),
  ];
  const defaultVersion = req.default ? { default_version_id: id } : {};
  if (!found) {
    writes.push(
      DatastoreModel.transaction.create(
        { kind: 'datastore', id: version.datastore_id, name: dsName, ...defaultVersion },
        { overwrite: false },
      ),
    );
  } else if (req.default) {
    writes.push(
      DatastoreModel.transaction.update(
        keyOf('datastore', found.id),
        { $SET: defaultVersion },
        { condition: exists() },
      ),
    );
  }
  await transact(writes, () => alreadyExists(req.name, number));
  return version;
}

/** PATCH: only the fields given change; `default` moves the datastore's default to or off it. */
export async function updateDatastoreVersion(id: string, req: UpdateDatastoreVersionRequest): Promise<void> {
  const [datastores, versions] = await Promise.all([loadDatastores(), loadVersions()]);
  const version = versions.find((v) => v.id === id);
  if (!version) throw versionNotFound(id);
  const datastore = datastores.find((d) => d.id === version.datastore_id);
  if (!datastore) throw new NotFound(`Datastore '${version.datastore_name}' cannot be found.`);
  if (
    req.name !== undefined &&
    versions.some(
      (v) =>
        v.id !== id &&
        v.datastore_id === datastore.id &&
        v.name === req.name &&
        v.version === version.version,
    )
  ) {
    throw alreadyExists(req.name, version.version);
  }

  const set: Record<string, unknown> = {};
  if (req.name !== undefined) set.name = req.name;
  if (req.datastore_manager !== undefined) set.manager = req.datastore_manager;
  if (typeof req.image === 'string') set.image = req.image;
  if (req.image_tags !== undefined) set.image_tags = req.image_tags;
  if (req.packages !== undefined) set.packages = req.packages;
  if (req.active !== undefined) set.active = req.active;
  const update: Record<string, unknown> = {};
  if (Object.keys(set).length) update.$SET = set;
  if (req.image === null) update.$REMOVE = ['image'];

  const writes: Array<Promise<unknown>> = [];
  if (Object.keys(update).length) {
    writes.push(VersionModel.transaction.update(keyOf('version', id), update, { condition: exists() }));
  }
  const isDefault = datastore.default_version_id === id;
  const dsKey = keyOf('datastore', datastore.id);
  if (req.default === true && !isDefault) {
    writes.push(
      DatastoreModel.transaction.update(dsKey, { $SET: { default_version_id: id } }, { condition: exists() }),
    );
  } else if (req.default === false && isDefault) {
    writes.push(
      DatastoreModel.transaction.update(dsKey, { $REMOVE: ['default_version_id'] }, { condition: exists() }),
    );
  }
  await transact(writes, () => versionNotFound(id));
}

/**
 * Trove's `DELETE /mgmt/datastore-versions/{id}`: refused while an instance, a backup or a
 * configuration group uses the version (DatastoreVersionsInUse, 400); its datastore loses it as
 * its default in the same transaction. The version's parameters are rules of the release
 * (lib/configurations/parameters), not items, so nothing else is left behind.
 */
export async function deleteDatastoreVersion(id: string): Promise<void> {
  const [datastores, versions] = await Promise.all([loadDatastores(), loadVersions()]);
  const version = versions.find((v) => v.id === id);
  if (!version) throw versionNotFound(id);
  const user = await versionUsedBy(id);
  if (user) throw new BadRequest(`Datastore version is in use by ${user}.`);
  const datastore = datastores.find((d) => d.id === version.datastore_id);
  const writes: Array<Promise<unknown>> = [
    VersionModel.transaction.delete(keyOf('version', id), { condition: exists() }),
  ];
  if (datastore?.default_version_id === id) {
    writes.push(
      DatastoreModel.transaction.update(
        keyOf('datastore', datastore.id),
        { $REMOVE: ['default_version_id'] },
        { condition: exists() },
      ),
    );
  }
  await transact(writes, () => versionNotFound(id));
}

/**
 * Trove's `DELETE /datastores/{id}` (admin): by id or name; refused while the datastore has any
 * version, active or not (DatastoreVersionsExist, 400), so no instance can be left naming it.
 */
export async function deleteDatastore(ref: string): Promise<void> {
  const [datastores, versions] = await Promise.all([loadDatastores(), loadVersions()]);
  const datastore = findDatastore(datastores, ref);
  if (!datastore) throw datastoreNotFound(ref);
  if (versions.some((v) => v.datastore_id === datastore.id))
    throw new BadRequest(`Datastore versions exist for datastore ${ref}.`);
  // A version added meanwhile would name a datastore that is gone: the condition is the most a
  // single-item delete can check; the version's own create recreates a missing datastore.
  await transact(
    [DatastoreModel.transaction.delete(keyOf('datastore', datastore.id), { condition: exists() })],
    () => datastoreNotFound(ref),
  );
}
