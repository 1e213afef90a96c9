import { BadRequest, NotFound } from '../errors.ts';
import type { Datastore, DatastoreVersion } from './types.ts';

// Trove's lookups (trove/datastore/models.py), kept pure so the rules are testable on their own.

/** `Datastore.load(id_or_name)`: the id first, then the name. */
export function findDatastore(datastores: Datastore[], ref: string): Datastore | undefined {
  return datastores.find((d) => d.id === ref) ?? datastores.find((d) => d.name === ref);
}

export function datastoreNotFound(ref: string): NotFound {
  return new NotFound(`Datastore '${ref}' cannot be found.`);
}

/**
 * Trove's DatastoreVersionNotFound subclasses NotFound, but Trove maps exceptions to statuses by
 * their exact type (`Resource._get_http_error`), and that type is not in its map: so an unknown
 * version is a 400 badRequest wherever it is named (show, instance create, configurations).
 */
export function versionNotFound(ref: string): BadRequest {
  return new BadRequest(`Datastore version '${ref}' cannot be found.`);
}

/** oslo's `uuidutils.is_uuid_like`: 32 hex digits, with or without the dashes. */
export function isUuidLike(ref: string): boolean {
  return /^[0-9a-f]{32}$/i.test(ref.replaceAll('-', '')) && /^[0-9a-f-]+$/i.test(ref);
}

function single(found: DatastoreVersion[], ref: string): DatastoreVersion | undefined {
  if (found.length > 1) {
    throw new BadRequest(
      `Multiple datastore versions found for '${ref}', use an UUID or specify both the name and version number to be more specific.`,
    );
  }
  return found[0];
}

/**
 * `DatastoreVersion.load(datastore, id_or_name, version)` among one datastore's versions: by id;
 * else by name, narrowed by the version number when one is given (one name may carry several
 * numbers); else, as a convenience Trove lacks, by version number alone. A UUID-like reference is
 * only ever an id there, and Trove's row lookup fails with its ModelNotFoundError (404).
 */
export function matchVersion(
  versions: DatastoreVersion[],
  ref: string,
  versionNumber?: string,
): DatastoreVersion {
  const byId = versions.find((v) => v.id === ref);
  if (byId) return byId;
  if (isUuidLike(ref)) throw new NotFound('DBDatastoreVersion Not Found');
  const named = versions.filter((v) => v.name === ref);
  if (versionNumber !== undefined) {
    const exact = single(
      named.filter((v) => v.version === versionNumber),
      ref,
    );
    if (exact) return exact;
    throw versionNotFound(versionNumber);
  }
  const found =
    single(named, ref) ??
    single(
      versions.filter((v) => v.version === ref),
      ref,
    );
  if (!found) throw versionNotFound(ref);
  return found;
}

/**
 * A flavorRef as Trove reads it (`utils.get_id_from_href`): an id, or an href whose last path
 * segment is the id. Undefined when none was given: Trove then says "Resource None ...".
 */
export function flavorIdOf(ref: string | number | undefined | null): string | undefined {
  if (ref === undefined || ref === null) return undefined;
  if (typeof ref === 'number') return String(ref);
  let path = ref;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    try {
      path = new URL(ref).pathname;
    } catch {
      // Not a URL after all: take it as it is.
    }
  }
  const id = path.replace(/\/+$/, '').split('/').pop();
  return id === undefined || id === '' ? undefined : id;
}
