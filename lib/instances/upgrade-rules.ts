import { mariadbBuild } from '../catalog/mariadb-versions.ts';
import { postgresqlVersion } from '../catalog/postgresql-versions.ts';
import type { DatastoreVersion } from '../catalog/types.ts';

// Which datastore versions an instance may be upgraded to (Trove's upgrade, TROVE_API.md §2.3,
// §9.7), as a pure rule: a later version of the same datastore, active, that this cloud can move
// the instance's data to. Anything else is Trove's 400 and changes nothing.

export interface CurrentVersion {
  datastore_id: string;
  datastore_name: string;
  version_id: string;
  /** The version's name (what the instance's `datastore.version` says). */
  name: string;
  version: string;
  manager: string;
}

const MARIADB_MANAGERS = ['mysql', 'mariadb'];

/**
 * The version an upgrade compares: MariaDB's is the build that runs it (its name "10.11" says
 * only the line, and versions seeded before there were two builds carry "10.11" as their number
 * too: the line's build is 10.11.19); any other engine's is the catalog's number.
 */
export function realVersion(manager: string, name: string, version: string): string {
  if (!MARIADB_MANAGERS.includes(manager)) return version;
  return buildOf({ name, version })?.version ?? version;
}

const buildOf = (v: { name: string; version: string }) => mariadbBuild(v.name) ?? mariadbBuild(v.version);

/** Orders dotted version numbers numerically ("9.6" < "10" < "10.11"); 0 when equal. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/**
 * Why `target` is refused for something that runs `datastore` (an instance's, or a cluster's
 * whose members each take the instance's path), given the catalog's `versions`.
 */
export function upgradeRefusalFor(
  versions: DatastoreVersion[],
  datastore: { type: string; version_id: string; version: string; version_number?: string; manager: string },
  target: DatastoreVersion,
): string | undefined {
  const current = versions.find((v) => v.id === datastore.version_id);
  return upgradeRefusal(
    {
      datastore_id: current?.datastore_id ?? target.datastore_id,
      datastore_name: datastore.type,
      version_id: datastore.version_id,
      name: datastore.version,
      version: datastore.version_number || datastore.version,
      manager: datastore.manager,
    },
    target,
  );
}

/** Why `target` is refused for an instance on `current`, or undefined when it may go ahead. */
export function upgradeRefusal(current: CurrentVersion, target: DatastoreVersion): string | undefined {
  if (target.datastore_id !== current.datastore_id)
    return `Datastore version '${target.name}' belongs to datastore '${target.datastore_name}', not '${current.datastore_name}'.`;
  if (target.id === current.version_id)
    return `The instance already runs datastore version '${target.name}'.`;
  if (!target.active) return `Datastore version '${target.name}' is not active.`;
  const from = realVersion(current.manager, current.name, current.version);
  const to = realVersion(target.manager, target.name, target.version);
  const order = compareVersions(to, from);
  if (order < 0) return `Downgrading from datastore version '${from}' to '${to}' is not supported.`;
  // Redis reads its own data files on any start: another catalog version of the very same
  // engine build (an operator's new name or image for it) is reached by restarting onto it.
  if (order === 0 && current.manager === 'redis' && target.manager === 'redis') return undefined;
  if (order === 0) return `The instance already runs datastore version '${to}'.`;
  if (MARIADB_MANAGERS.includes(current.manager) && target.manager === current.manager) {
    // mariadb-upgrade moves a data dir to any later build; this cloud runs the builds it has.
    if (!buildOf(current) || !buildOf(target))
      return `MariaDB ${from} cannot be upgraded to ${to} on this cloud.`;
    return undefined;
  }
  if (current.manager !== 'postgresql' || target.manager !== 'postgresql')
    return `Upgrading datastore '${current.datastore_name}' to another version is not supported.`;
  if (!postgresqlVersion(current.version) || !postgresqlVersion(target.version))
    return `PostgreSQL ${current.version} cannot be upgraded to ${target.version} on this cloud.`;
  return undefined;
}
