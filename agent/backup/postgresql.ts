import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { requirePostgresqlVersion } from '../../lib/catalog/postgresql-versions.ts';
import { account } from '../engines/fs.ts';
import type { EngineLayout } from '../engines/manager.ts';
import { waitFor } from '../engines/process.ts';
import { engineUser, postgresqlPaths } from './layout.ts';
import type { UploadResult, UploadTarget } from './multipart.ts';
import { extractObject, type StoredObject, streamToS3 } from './stream.ts';

// pg_basebackup as a single tar on stdout, with the WAL needed to make it consistent inside
// (-X fetch; -X stream cannot write a tar to stdout). A restore unpacks the tar; on start the
// server replays that WAL from backup_label. Incrementals (pg_basebackup --incremental, 17) are
// not built yet: the caller refuses them.

/** The pg_basebackup for the version that wrote the data dir (16 has none of its own: 17's serves it). */
function pgBasebackup(layout: EngineLayout): string {
  const written = join(layout.baseDir, 'data', 'PG_VERSION');
  const version = existsSync(written)
    ? readFileSync(written, 'utf8').trim()
    : (layout.datastoreVersion ?? '15');
  return join(requirePostgresqlVersion(version).clientBinDir, 'pg_basebackup');
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
  { signal }: { signal?: AbortSignal },
): Promise<UploadResult> {
  const { socketDir } = postgresqlPaths(layout);
  const owner = await account(engineUser('postgresql', layout));
  return withReplicationAccess(layout, () =>
    streamToS3(
      {
        name: 'pg_basebackup',
        command: pgBasebackup(layout),
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
          // Our own sha256 covers the object; the manifest would only be one more file in the tar.
          '--no-manifest',
        ],
        uid: owner.uid,
        gid: owner.gid,
        env: { HOME: '/var/lib/postgresql', PGPASSFILE: '/dev/null' },
      },
      target,
      dataKey,
      { signal },
    ),
  );
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

/** Has the server re-read pg_hba.conf, and returns once new sessions are served with it. */
async function reload(layout: EngineLayout): Promise<void> {
  const connect = async () => {
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
  };
  const client = await connect();
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
      const probe = await connect();
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

/** Unpacks the base backup under `staging`; returns the directory that becomes the data dir. */
export async function restorePostgresql(
  s3: S3Client,
  object: StoredObject,
  staging: string,
  signal?: AbortSignal,
): Promise<string> {
  const dir = join(staging, 'pgdata');
  await mkdir(dir, { mode: 0o700 });
  await extractObject(
    s3,
    object,
    { name: 'tar', command: 'tar', args: ['--extract', '--file=-', `--directory=${dir}`] },
    signal,
  );
  await readFile(join(dir, 'PG_VERSION'), 'utf8').catch(() => {
    throw new Error('the PostgreSQL backup holds no PG_VERSION: not a base backup');
  });
  return dir;
}
