import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { manifestKeyOf } from '../../lib/backups/model.ts';
import { type PostgresqlVersion, requirePostgresqlVersion } from '../../lib/catalog/postgresql-versions.ts';
import { account } from '../engines/fs.ts';
import type { EngineLayout } from '../engines/manager.ts';
import { ensureWalSummarizer } from '../engines/pg-wal-summaries.ts';
import { waitFor } from '../engines/process.ts';
import { engineUser, postgresqlPaths } from './layout.ts';
import type { UploadResult, UploadTarget } from './multipart.ts';
import { extractChain, getSealed, putSealed, type StoredObject, streamToS3 } from './stream.ts';
import { TarMemberCapture } from './tar-member.ts';
import { ToolGroup } from './tools.ts';

// pg_basebackup as a single tar on stdout, with the WAL needed to make it consistent inside
// (-X fetch; -X stream cannot write a tar to stdout). A restore unpacks the tar; on start the
// server replays that WAL from backup_label.
//
// Versions that take incremental backups (17: lib/catalog/postgresql-versions.ts) keep the
// backup_manifest, which pg_basebackup puts at the end of the tar: pg_combinebackup needs it in
// every backup of a chain, and a copy of it is stored beside the backup (manifestKeyOf, sealed
// with the backup's data key), where `pg_basebackup --incremental` of the next backup starts from:
// that copy is fetched into the instance's run dir (small: one line per file), the only local
// file of a backup. A restore of a chain unpacks each backup into a directory of its own and
// pg_combinebackup writes the data dir from them.

export interface StoredManifest {
  bucket: string;
  key: string;
  /** The data key of the backup it belongs to. */
  dataKey: Buffer;
}

/** The manifest of a large cluster is a few MB; one far larger is not a manifest we keep in memory. */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/**
 * The version that wrote the data dir (PG_VERSION), else, before there is one (a restore), the
 * instance's datastore version.
 */
export function postgresqlVersionOf(layout: EngineLayout): PostgresqlVersion {
  const written = join(layout.baseDir, 'data', 'PG_VERSION');
  return requirePostgresqlVersion(
    existsSync(written) ? readFileSync(written, 'utf8').trim() : (layout.datastoreVersion ?? '15'),
  );
}

/**
 * pg_basebackup needs a replication connection, and the pg_hba.conf the engine manager writes
 * (pg-access-rules.ts) has no `replication` line, which `all` does not cover. Until it has one,
 * the line is added for the duration of the backup (the same peer mapping the agent already uses
 * for its superuser sessions) and taken out again afterwards.
 */
const REPLICATION_LINE = 'local replication postgres peer map=agent';

export async function backupPostgresql(
  layout: EngineLayout,
  target: UploadTarget,
  dataKey: Buffer,
  {
    signal,
    parentManifest,
    storeManifest = true,
  }: { signal?: AbortSignal; parentManifest?: StoredManifest; storeManifest?: boolean },
): Promise<UploadResult & { manifest?: boolean }> {
  const { socketDir, confFile } = postgresqlPaths(layout);
  const version = postgresqlVersionOf(layout);
  const owner = await account(engineUser('postgresql', layout));
  if (version.incrementalBackups) {
    // The summaries an incremental on top of this backup will read start being written now.
    const running = await ensureWalSummarizer(confFile, () => connect(layout));
    if (!running && parentManifest) {
      throw new Error(
        'the WAL summarizer does not run (summarize_wal is off: a configuration group or ALTER SYSTEM turned it off), and an incremental backup needs its summaries',
      );
    }
  }
  // The manifest goes by at the end of the tar: a copy is kept for the next incremental.
  const manifest =
    version.incrementalBackups && storeManifest
      ? new TarMemberCapture('backup_manifest', MAX_MANIFEST_BYTES)
      : undefined;
  // The parent's manifest, for pg_basebackup to read as the engine's user (the run dir is its own).
  const parentFile = parentManifest
    ? join(socketDir, `.parent-manifest-${randomBytes(4).toString('hex')}`)
    : undefined;
  try {
    if (parentManifest && parentFile) {
      const text = await getSealed(target.s3, parentManifest, parentManifest.dataKey, signal).catch(
        (err: Error) => {
          throw new Error(`the parent backup's manifest could not be read: ${err.message}`);
        },
      );
      await writeFile(parentFile, text, { mode: 0o600 });
      await chown(parentFile, owner.uid, owner.gid);
    }
    return await withReplicationAccess(layout, async () => {
      const result = await streamToS3(
        {
          name: 'pg_basebackup',
          command: join(version.clientBinDir, 'pg_basebackup'),
          args: [
            `--host=${socketDir}`,
            `--port=${layout.port}`,
            '--username=postgres',
            '--no-password',
            '--pgdata=-',
            '--format=tar',
            '--wal-method=fetch',
            // A spread checkpoint could make the backup wait for minutes before the first byte.
            '--checkpoint=fast',
            // Our own sha256 covers the object; without incrementals the manifest would only be
            // one more file in the tar.
            ...(version.incrementalBackups ? [] : ['--no-manifest']),
            ...(parentFile ? [`--incremental=${parentFile}`] : []),
          ],
          uid: owner.uid,
          gid: owner.gid,
          env: { HOME: '/var/lib/postgresql', PGPASSFILE: '/dev/null' },
        },
        target,
        dataKey,
        {
          signal,
          tap: manifest ? (chunk) => manifest.write(chunk) : undefined,
          // The manifest is stored before the backup completes: a completed backup has its own.
          check: async () => {
            if (!manifest) return;
            const key = manifestKeyOf(target.key);
            await putSealed(target.s3, { bucket: target.bucket, key }, manifest.content(), dataKey, signal);
          },
        },
      );
      return manifest ? { ...result, manifest: true } : result;
    });
  } finally {
    if (parentFile) await rm(parentFile, { force: true });
  }
}

export async function withReplicationAccess<T>(layout: EngineLayout, work: () => Promise<T>): Promise<T> {
  const { hbaFile } = postgresqlPaths(layout);
  const hba = await readFile(hbaFile, 'utf8');
  if (/^\s*local\s+replication\s+(all|postgres|"postgres")\s/m.test(hba)) return work();
  // writeFile on the existing file keeps its owner (postgres) and mode (0600).
  await writeFile(hbaFile, `${REPLICATION_LINE}\n${hba}`);
  try {
    await reload(layout);
    return await work();
  } finally {
    const now = await readFile(hbaFile, 'utf8');
    if (now.includes(REPLICATION_LINE)) {
      await writeFile(hbaFile, now.replace(`${REPLICATION_LINE}\n`, ''));
      await reload(layout).catch(() => {});
    }
  }
}

/** A superuser session on database postgres over the socket (peer, as the agent's own). */
async function connect(layout: EngineLayout): Promise<pg.Client> {
  const client = new pg.Client({
    host: postgresqlPaths(layout).socketDir,
    port: layout.port,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: 2_000,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Has the server re-read pg_hba.conf, and returns once new sessions are served with it. */
async function reload(layout: EngineLayout): Promise<void> {
  const client = await connect(layout);
  let before: string | undefined;
  try {
    const { rows } = await client.query<{ now: string }>('SELECT clock_timestamp()::text AS now');
    before = rows[0]?.now;
    await client.query('SELECT pg_reload_conf()');
  } finally {
    await client.end().catch(() => {});
  }
  await waitFor(
    'postgresql to reload pg_hba.conf',
    async () => {
      const probe = await connect(layout);
      try {
        const { rows } = await probe.query<{ done: boolean }>(
          'SELECT pg_conf_load_time() >= $1::timestamptz AS done',
          [before],
        );
        return rows[0]?.done ? true : undefined;
      } finally {
        await probe.end().catch(() => {});
      }
    },
    { timeoutMs: 10_000 },
  );
}

/**
 * Unpacks the base backup, or a chain of a full backup and its incrementals, under `staging`;
 * returns the directory that becomes the data dir.
 */
export async function restorePostgresql(
  s3: S3Client,
  chain: StoredObject[],
  staging: string,
  signal?: AbortSignal,
): Promise<string> {
  const dirs = await extractChain(
    s3,
    chain,
    staging,
    (dir) => ({ name: 'tar', command: 'tar', args: ['--extract', '--file=-', `--directory=${dir}`] }),
    signal,
    (dir) =>
      readFile(join(dir, 'PG_VERSION'), 'utf8').then(
        () => {},
        () => {
          throw new Error('the PostgreSQL backup holds no PG_VERSION: not a base backup');
        },
      ),
  );
  const [full, ...incrementals] = dirs;
  if (!full) throw new Error('restore needs at least one backup object');
  const label = await readFile(join(full, 'backup_label'), 'utf8').catch(() => '');
  if (/^INCREMENTAL FROM LSN:/m.test(label)) {
    throw new Error(
      'the first backup of the chain is an incremental: it restores only on top of its parents',
    );
  }
  if (!incrementals.length) {
    // The backup's own record of its files, not the server's.
    await rm(join(full, 'backup_manifest'), { force: true });
    return full;
  }
  const version = requirePostgresqlVersion((await readFile(join(full, 'PG_VERSION'), 'utf8')).trim());
  if (!version.incrementalBackups) throw new Error(`PostgreSQL ${version.name} has no incremental backups`);
  // A synthetic full backup as of the last incremental, its WAL (-X fetch) included; it checks
  // that the chain is one (each backup's manifest names its parent's start). No manifest of its
  // own, no fsync: the server syncs the data dir when it starts from a backup_label.
  const out = join(staging, 'pgdata');
  await ToolGroup.run(
    {
      name: 'pg_combinebackup',
      command: join(version.clientBinDir, 'pg_combinebackup'),
      args: ['--no-sync', '--no-manifest', `--output=${out}`, ...dirs],
      cwd: staging,
    },
    signal,
  );
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  return out;
}
