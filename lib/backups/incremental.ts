import { postgresqlVersion } from '../catalog/postgresql-versions.ts';
import type { BackupItem } from './model.ts';

// Which datastores take incremental backups, and which backups an incremental may build on.
// MariaDB (the mysql and mariadb managers) always: mariadb-backup --incremental-lsn. PostgreSQL
// where the version table says so (pg_basebackup --incremental, 17): one fact, kept in
// lib/catalog/postgresql-versions.ts. Redis never: an RDB is always the whole dataset.

interface DatastoreRef {
  type: string;
  version: string;
  manager: string;
}

/** Why `datastore` takes no incremental backup (Trove's NotImplemented, 501); undefined when it does. */
export function incrementalRefusal(datastore: DatastoreRef): string | undefined {
  switch (datastore.manager) {
    case 'mysql':
    case 'mariadb':
      return undefined;
    case 'postgresql':
      return postgresqlVersion(datastore.version)?.incrementalBackups
        ? undefined
        : `Incremental backups are not supported for datastore ${datastore.type} version ${datastore.version}.`;
    default:
      return `Incremental backups are not supported for datastore ${datastore.type}.`;
  }
}

/**
 * Why `parent` cannot be the parent of an incremental of an instance on `datastore` (a 400);
 * undefined when it can. pg_basebackup --incremental starts from the parent's backup_manifest,
 * which a backup keeps beside its object (`manifest`) only when it was taken by a version
 * that takes incrementals, after this cloud kept manifests; and it must be the same cluster's
 * (an upgrade makes a new one).
 */
export function parentRefusal(datastore: DatastoreRef, parent: BackupItem): string | undefined {
  if (datastore.manager !== 'postgresql') return undefined;
  if (parent.datastore.version !== datastore.version) {
    return `Backup ${parent.id} was taken on ${parent.datastore.type} ${parent.datastore.version}; an incremental on ${datastore.version} needs a parent taken on ${datastore.version}: take a full backup first.`;
  }
  if (!parent.manifest) {
    return `Backup ${parent.id} has no backup manifest (taken before this cloud kept them) for an incremental to start from: take a full backup first.`;
  }
  return undefined;
}
