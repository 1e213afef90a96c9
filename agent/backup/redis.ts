import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { readIfExists } from '../engines/fs.ts';
import type { EngineLayout } from '../engines/manager.ts';
import { redisPaths } from './layout.ts';
import type { UploadResult, UploadTarget } from './multipart.ts';
import { extractObject, type StoredObject, streamToS3 } from './stream.ts';

// Redis: the RDB snapshot a replica would receive (redis-cli --rdb, over the instance's socket).
// The admin password reaches redis-cli through REDISCLI_AUTH, never its command line (ps shows
// that to everyone). A restore writes dump.rdb into the data dir, which Redis loads when it starts
// with appendonly off (the engine manager's redis.conf has it off: LOCAL_STACK pitfall 8).

export async function backupRedis(
  layout: EngineLayout,
  target: UploadTarget,
  dataKey: Buffer,
  { signal }: { signal?: AbortSignal },
): Promise<UploadResult> {
  const { socket, passwordFile } = redisPaths(layout);
  const password = await readIfExists(passwordFile);
  return streamToS3(
    {
      name: 'redis-cli --rdb',
      command: 'redis-cli',
      args: ['-s', socket, '--no-auth-warning', '--rdb', '-'],
      env: password ? { REDISCLI_AUTH: password } : {},
    },
    target,
    dataKey,
    { signal },
  );
}

/** Writes the snapshot as `dump.rdb` under `staging`; returns the directory that becomes the data dir. */
export async function restoreRedis(
  s3: S3Client,
  object: StoredObject,
  staging: string,
  signal?: AbortSignal,
): Promise<string> {
  const dir = join(staging, 'redis');
  await mkdir(dir, { mode: 0o700 });
  const file = await open(join(dir, 'dump.rdb'), 'wx+', 0o600);
  try {
    await extractObject(s3, object, { outputFd: file.fd }, signal);
    const magic = Buffer.alloc(5);
    await file.read(magic, 0, 5, 0);
    if (magic.toString('latin1') !== 'REDIS') throw new Error('the Redis backup is not an RDB file');
  } finally {
    await file.close();
  }
  return dir;
}
