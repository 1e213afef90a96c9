import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { mariadbPrograms } from '../../lib/catalog/mariadb-versions.ts';
import type { EngineLayout } from '../engines/manager.ts';
import { gtidOfBackup } from '../engines/mariadb-replication.ts';
import { mariadbBuildOf, mariadbPaths } from './layout.ts';
import type { UploadResult, UploadTarget } from './multipart.ts';
import { extractChain, type StoredObject, streamToS3 } from './stream.ts';
import { ToolGroup } from './tools.ts';

// MariaDB: a physical hot backup with mariadb-backup, streamed as xbstream. An incremental takes
// the pages changed since its parent's to_lsn; each backup's own to_lsn comes from the
// xtrabackup_checkpoints it writes to --extra-lsndir (a small temp dir: with --stream nothing of
// the database's size is written locally). A restore unpacks each object with mbstream, prepares
// the full backup, applies the incrementals in order, and hands back the prepared directory.
// Each runs the mariadb-backup of the instance's own build (mariadbBuildOf): the one of the
// server it copies, and of the server that will run what it restores.

/** Files mariadb-backup leaves in a prepared backup that belong to the backup, not the server. */
const BACKUP_METADATA = /^(xtrabackup_|mariadb_backup_|backup-my\.cnf$)/;

export async function backupMariadb(
  layout: EngineLayout,
  target: UploadTarget,
  dataKey: Buffer,
  { parentLsn, signal }: { parentLsn?: string; signal?: AbortSignal },
): Promise<UploadResult & { lsn: string }> {
  if (parentLsn !== undefined && !/^\d+$/.test(parentLsn)) {
    throw new Error(`parentLsn must be a MariaDB LSN (digits only), got "${parentLsn}"`);
  }
  const { configFile, socket } = mariadbPaths(layout);
  const programs = mariadbPrograms(mariadbBuildOf(layout));
  const work = await mkdtemp(join(tmpdir(), 'tl-mariabackup-'));
  const lsnDir = join(work, 'lsn');
  let lsn = '';
  try {
    const result = await streamToS3(
      {
        name: 'mariadb-backup',
        command: programs.backup,
        args: [
          // First, or /etc/mysql is read as well (LOCAL_STACK pitfall 3).
          `--defaults-file=${configFile}`,
          '--backup',
          '--stream=xbstream',
          '--user=root',
          `--socket=${socket}`,
          `--target-dir=${join(work, 'target')}`,
          `--extra-lsndir=${lsnDir}`,
          ...(parentLsn ? [`--incremental-lsn=${parentLsn}`] : []),
        ],
        cwd: work,
      },
      target,
      dataKey,
      {
        signal,
        // Without its to_lsn the backup cannot be the parent of an incremental: not a good backup.
        check: async () => {
          lsn = await readToLsn(lsnDir);
        },
      },
    );
    return { ...result, lsn };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function readToLsn(lsnDir: string): Promise<string> {
  const text = await readFile(join(lsnDir, 'xtrabackup_checkpoints'), 'utf8').catch(() => '');
  const lsn = /^to_lsn\s*=\s*(\d+)\s*$/m.exec(text)?.[1];
  if (!lsn) throw new Error('mariadb-backup wrote no to_lsn (xtrabackup_checkpoints missing or unreadable)');
  return lsn;
}

/** Unpacks and prepares the chain under `staging`; returns the directory that becomes the data dir. */
export async function restoreMariadb(
  layout: EngineLayout,
  s3: S3Client,
  chain: StoredObject[],
  staging: string,
  signal?: AbortSignal,
): Promise<{ dir: string; position?: string }> {
  const programs = mariadbPrograms(mariadbBuildOf(layout));
  const dirs = await extractChain(
    s3,
    chain,
    staging,
    (dir) => ({ name: 'mbstream', command: programs.mbstream, args: ['-x', '-C', dir] }),
    signal,
  );
  const [full, ...incrementals] = dirs as [string, ...string[]];
  const prepare = (extra: string[]) =>
    ToolGroup.run(
      {
        name: 'mariadb-backup --prepare',
        command: programs.backup,
        // --no-defaults: the backup's own backup-my.cnf applies, not the host's /etc/mysql.
        args: ['--no-defaults', '--prepare', `--target-dir=${full}`, ...extra],
        cwd: staging,
      },
      signal,
    );
  await prepare([]);
  for (const dir of incrementals) await prepare([`--incremental-dir=${dir}`]);
  // The GTID the data is consistent with: where a replica seeded from it starts following.
  const position = await gtidOfBackup(incrementals[incrementals.length - 1] ?? full);
  for (const entry of await readdir(full)) {
    if (BACKUP_METADATA.test(entry)) await rm(join(full, entry), { recursive: true, force: true });
  }
  return { dir: full, position };
}
