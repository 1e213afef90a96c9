import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { POSTGRESQL_VERSIONS, type PostgresqlVersion } from '../../lib/catalog/postgresql-versions.ts';
import { troveError } from '../engines/admin.ts';
import { account, chownRecursive, ensureDir, ensureTraversable } from '../engines/fs.ts';
import type { EngineLayout } from '../engines/manager.ts';
import { BACKUP_ENGINES, type BackupEngine, engineUser, instancePaths, SERVICE_USER } from './layout.ts';
import { backupMariadb, restoreMariadb } from './mariadb.ts';
import {
  backupPostgresql,
  postgresqlVersionOf,
  restorePostgresql,
  type StoredManifest,
} from './postgresql.ts';
import { backupRedis, restoreRedis } from './redis.ts';
import { type StoredObject, verifyObjects } from './stream.ts';

// The guest's backup and restore of one instance (Trove's create_backup and prepare with
// backup_info). A backup streams the engine's own tool through zstd and AES-256-GCM into one S3
// object, never through a local file of the database's size; a restore checks every object of
// the chain before it writes anything, then builds the data dir beside the instance's and only
// moves it into place when all of it succeeded.

export type { BackupEngine } from './layout.ts';

export interface BackupTarget {
  bucket: string;
  key: string;
  s3: S3Client;
}

export interface BackupResult {
  /** Bytes stored (the encrypted object). */
  size_bytes: number;
  /** sha256 (hex) of the stored object. */
  checksum: string;
  /** MariaDB: this backup's to_lsn, the parentLsn of an incremental on top of it. */
  lsn?: string;
  /**
   * PostgreSQL 17+: its backup_manifest is stored beside it (manifestKeyOf(key), sealed with the
   * same data key), the parentManifest of an incremental on top of it.
   */
  manifest?: boolean;
}

export interface BackupOptions {
  /** MariaDB only: the parent's `lsn`, for an incremental backup. */
  parentLsn?: string;
  /** PostgreSQL only: the parent's stored backup_manifest, for an incremental backup. */
  parentManifest?: StoredManifest;
  /** PostgreSQL 17+: store this backup's manifest beside it (default); false for a replica's snapshot. */
  storeManifest?: boolean;
  /** Aborting kills the tools and aborts the multipart upload. */
  signal?: AbortSignal;
}

export interface ChainObject {
  bucket: string;
  key: string;
  /** sha256 (hex) of the stored object, as runBackup returned it. */
  checksum: string;
  /** The 32-byte key the object was encrypted with. */
  dataKey: Buffer;
}

/** Errors named after Trove's exceptions carry `name` (NotImplemented → 501 in the API). */
function incrementalNotImplemented(engine: BackupEngine, why: string): Error {
  return troveError(
    'NotImplemented',
    `Incremental backups are not supported for datastore ${engine}: ${why}.`,
  );
}

/**
 * Why an incremental of `engine` on `version` (PostgreSQL: the version that wrote the data dir, or
 * the instance's) cannot be, in `how` (MariaDB carries an LSN, PostgreSQL a manifest); undefined
 * when it can.
 */
function incrementalRefused(
  engine: BackupEngine,
  how: 'lsn' | 'manifest',
  version: () => PostgresqlVersion,
): string | undefined {
  if (engine === 'redis') return 'Redis has no incremental snapshot (an RDB is always the whole dataset)';
  if (engine === 'mariadb')
    return how === 'lsn' ? undefined : "a MariaDB incremental starts from its parent's LSN, not a manifest";
  const v = version();
  if (!v.incrementalBackups) {
    const since = POSTGRESQL_VERSIONS.find((p) => p.incrementalBackups)?.name ?? 'a later version';
    return `PostgreSQL ${v.name} has no incremental base backup (pg_basebackup --incremental needs PostgreSQL ${since})`;
  }
  return how === 'manifest'
    ? undefined
    : "a PostgreSQL incremental starts from its parent's backup_manifest, not an LSN";
}

function checkEngine(engine: BackupEngine): void {
  if (!BACKUP_ENGINES.includes(engine)) {
    throw new Error(
      `no backup for datastore "${String(engine)}"; expected one of ${BACKUP_ENGINES.join(', ')}`,
    );
  }
}

export async function runBackup(
  engine: BackupEngine,
  layout: EngineLayout,
  target: BackupTarget,
  dataKey: Buffer,
  opts: BackupOptions = {},
): Promise<BackupResult> {
  checkEngine(engine);
  if (!Buffer.isBuffer(dataKey) || dataKey.length !== 32) throw new Error('the data key must be 32 bytes');
  for (const how of ['lsn', 'manifest'] as const) {
    if ((how === 'lsn' ? opts.parentLsn : opts.parentManifest) === undefined) continue;
    const why = incrementalRefused(engine, how, () => postgresqlVersionOf(layout));
    if (why) throw incrementalNotImplemented(engine, why);
  }
  switch (engine) {
    case 'mariadb':
      return backupMariadb(layout, target, dataKey, opts);
    case 'postgresql':
      return backupPostgresql(layout, target, dataKey, opts);
    case 'redis':
      return backupRedis(layout, target, dataKey, opts);
  }
}

/**
 * Restores `chain` (the full backup first, then its incrementals in order: MariaDB, PostgreSQL
 * 17+) into an instance whose base dir is empty or absent. Every object is checked (present,
 * sha256 of the stored bytes) before anything is written; the data dir is created only at the
 * very end, and on failure all that was written is removed again. Afterwards the instance counts as initialised and stopped:
 * the engine manager's prepare() then writes its config and starts it on the restored data
 * without initialising (start() alone needs the config that prepare() writes).
 */
export async function restoreBackup(
  engine: BackupEngine,
  layout: EngineLayout,
  chain: ChainObject[],
  s3: S3Client,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  checkEngine(engine);
  const [full, ...incrementals] = chain;
  if (!full) throw new Error('restore needs at least one backup object');
  if (incrementals.length) {
    // The restored data dir does not exist yet: the instance's own version says.
    const how = engine === 'mariadb' ? 'lsn' : 'manifest';
    const why = incrementalRefused(engine, how, () => postgresqlVersionOf(layout));
    if (why) throw incrementalNotImplemented(engine, why);
  }
  for (const object of chain) {
    if (!/^[0-9a-f]{64}$/i.test(object.checksum)) {
      throw new Error(`backup object s3://${object.bucket}/${object.key} has no sha256 checksum`);
    }
    if (!Buffer.isBuffer(object.dataKey) || object.dataKey.length !== 32) {
      throw new Error(`backup object s3://${object.bucket}/${object.key}: the data key must be 32 bytes`);
    }
  }
  const paths = instancePaths(layout);
  await checkUninitialised(paths.baseDir, paths.dataDir, paths.initializedMarker);
  await verifyObjects(s3, chain, opts.signal);

  const baseExisted = await exists(paths.baseDir);
  await ensureDir(paths.baseDir, { uid: 0, gid: 0 }, 0o711);
  await ensureTraversable(paths.baseDir);
  const staging = join(paths.baseDir, `.restore-${randomBytes(4).toString('hex')}`);
  await mkdir(staging, { mode: 0o700 });
  let dataDirCreated = false;
  try {
    const { dir: restored, position } = await restoreInto(
      engine,
      layout,
      s3,
      [full, ...incrementals],
      staging,
      opts.signal,
    );
    const { dataDirMode } = SERVICE_USER[engine];
    const owner = await account(engineUser(engine, layout));
    await chownRecursive(restored, owner);
    await chmod(restored, dataDirMode);
    // An empty data dir (left by a failed prepare) gives way; rmdir refuses a non-empty one.
    await rmdir(paths.dataDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rename(restored, paths.dataDir);
    dataDirCreated = true;
    await writeFile(paths.stoppedMarker, '');
    // The position the data is consistent with (MariaDB's GTID): where a replica seeded from
    // this backup starts to follow its source.
    if (position !== undefined) await writeFile(paths.restoredPosition, position);
    await writeFile(paths.initializedMarker, `${new Date().toISOString()} restored\n`);
  } catch (err) {
    if (dataDirCreated) {
      await rm(paths.initializedMarker, { force: true });
      await rm(paths.stoppedMarker, { force: true });
      await rm(paths.dataDir, { recursive: true, force: true });
    }
    if (!baseExisted) await rm(paths.baseDir, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function restoreInto(
  engine: BackupEngine,
  layout: EngineLayout,
  s3: S3Client,
  chain: [StoredObject, ...StoredObject[]],
  staging: string,
  signal?: AbortSignal,
): Promise<{ dir: string; position?: string }> {
  switch (engine) {
    case 'mariadb':
      return restoreMariadb(layout, s3, chain, staging, signal);
    case 'postgresql':
      return restorePostgresql(s3, chain, staging, signal).then((dir) => ({ dir }));
    case 'redis':
      return restoreRedis(s3, chain[0], staging, signal).then((dir) => ({ dir }));
  }
}

async function checkUninitialised(baseDir: string, dataDir: string, marker: string): Promise<void> {
  if (await exists(marker)) {
    throw new Error(`${baseDir} already holds an initialised instance; a restore needs a new one`);
  }
  const entries = await readdir(dataDir).catch(() => []);
  if (entries.length) throw new Error(`${dataDir} is not empty; a restore needs a new instance`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
