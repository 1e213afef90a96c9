/** A backup (Trove's backups row), keyed by project first; it outlives its instance. */
export interface BackupItem {
  project_id: string;
  id: string;
  name: string;
  description?: string;
  instance_id: string;
  parent_id?: string;
  backup_type: 'full' | 'incremental';
  /** NEW → BUILDING → COMPLETED | FAILED; DELETE_FAILED when its objects could not be removed. */
  status: 'NEW' | 'BUILDING' | 'COMPLETED' | 'FAILED' | 'DELETE_FAILED';
  created: string;
  updated: string;
  datastore: { type: string; version: string; version_id: string; manager: string };
  bucket: string;
  key: string;
  /** The object's data key, wrapped under the deployment's key-encryption key; never in S3. */
  wrapped_data_key: string;
  size_bytes?: number;
  checksum?: string;
  /** MariaDB's to_lsn, the starting point of an incremental on top of this backup. */
  lsn?: string;
  /**
   * PostgreSQL 17+: this backup's backup_manifest is stored beside it (`manifestKeyOf(key)`, sealed
   * with the same data key): pg_basebackup --incremental of a backup on top of it starts from it.
   */
  manifest?: boolean;
  fault?: string;
  /** Taken by a backup policy (only these are pruned by retention). */
  scheduled?: boolean;
  /** Taken first by this upgrade's workflow (instance-upgrade), not by a backup-create of its own. */
  upgrade_execution?: string;
  /** Its Mistral execution record was deleted (`execution delete`); the backup itself stays. */
  execution_deleted?: boolean;
}

/** Where a backup stored under `key` keeps its backup_manifest (PostgreSQL 17+; see `manifest`). */
export const manifestKeyOf = (key: string): string => `${key}.manifest`;
