import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { config } from '../config.ts';
import { logger } from '../logger.ts';
import { s3Client } from '../s3.ts';
import { manifestKeyOf } from './model.ts';
import { projectBackups } from './repository.ts';

/**
 * Removes what a deleted instance's guest stored under the instance's prefix that no backup
 * record owns: objects and open multipart uploads. A guest may finish a backup whose record is
 * already gone (its workflow was lost and its owner deleted it while the guest was busy or
 * frozen); nothing else would ever remove that object. Run once the server is terminated, so
 * no guest can store anything there afterwards. Backups that have a record are kept: in Trove a
 * backup outlives its instance.
 */
export async function removeStrayBackupObjects(projectId: string, instanceId: string): Promise<number> {
  const s3 = s3Client();
  const bucket = config.backupBucket;
  const prefix = `${projectId}/${instanceId}/`;
  const owned = new Set(
    (await projectBackups(projectId))
      .filter((b) => b.instance_id === instanceId)
      .flatMap((b) => [b.key, manifestKeyOf(b.key)]),
  );
  let removed = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      if (!object.Key || owned.has(object.Key)) continue;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key }));
      removed++;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const upload of uploads.Uploads ?? []) {
    if (!upload.Key || owned.has(upload.Key)) continue;
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
    );
    removed++;
  }
  if (removed) logger.info('removed backup objects no record owns', { instance_id: instanceId, removed });
  return removed;
}
