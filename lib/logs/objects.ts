import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { config } from '../config.ts';
import { s3Client } from '../s3.ts';
import { instanceLogPrefix, logMetafile, logPrefix, logRoot, OBJECT_NAME } from './layout.ts';

// The guest publishes its logs, but not with credentials of its own: a guest role that could
// write under database_logs/ could write (or delete) any project's logs, since every guest of a
// deployment shares that role. Each order that may publish carries instead an upload grant, an
// S3 POST policy signed by this function's role that admits objects only below the instance's
// own prefix, of at most one chunk each, until the call's deadline. Deletes are the control
// plane's alone: what a discard or a rotation supersedes is removed here, once the guest says
// where the superseded objects end.

/** An S3 POST policy: where the guest posts (`url`) and the form fields it must send. */
export interface UploadGrant {
  url: string;
  fields: Record<string, string>;
}

/** What a guest's answer says is no longer published: objects before a name, and the metafile. */
export interface Superseded {
  before: string;
  metafile: boolean;
}

/** The bucket logs go to and the client that reaches it: the deployment's, unless a test says. */
export interface LogBucket {
  client: S3Client;
  name: string;
}

let deployment: LogBucket | undefined;
const ours = (): LogBucket => (deployment ??= { client: s3Client(), name: config.backupBucket });

/**
 * The grant for one call: any key below `database_logs/<project>/<instance>/`, a body of at most
 * `maxBytes`, the content type and the two metadata fields the guest sets, for `seconds`.
 */
export async function uploadGrant(
  projectId: string,
  instanceId: string,
  maxBytes: number,
  seconds: number,
  bucket: LogBucket = ours(),
): Promise<UploadGrant> {
  const { url, fields } = await createPresignedPost(bucket.client, {
    Bucket: bucket.name,
    // `${filename}` makes the key a prefix condition (starts-with) rather than one exact key.
    Key: `${logRoot(projectId)}${instanceLogPrefix(instanceId)}\${filename}`,
    Conditions: [
      ['content-length-range', 0, maxBytes],
      ['starts-with', '$Content-Type', ''],
      ['starts-with', '$x-amz-meta-lines', ''],
      ['starts-with', '$x-amz-meta-delete-after', ''],
    ],
    Expires: seconds,
  });
  return { url, fields };
}

/**
 * Removes one log's objects named before `superseded.before` (and its metafile when asked):
 * what a discard or a rotation left in the bucket. Names sort by the time they were written, so
 * objects the same call published afterwards stay.
 */
export async function removeSuperseded(
  projectId: string,
  instanceId: string,
  manager: string,
  name: string,
  superseded: Superseded,
  bucket: LogBucket = ours(),
): Promise<void> {
  if (!OBJECT_NAME.test(superseded.before)) throw new Error('A guest named no object to discard before.');
  const root = logRoot(projectId);
  const prefix = `${root}${logPrefix(instanceId, manager, name)}`;
  const before = `${prefix}${superseded.before}`;
  let token: string | undefined;
  let done = false;
  while (!done) {
    const page = await bucket.client.send(
      new ListObjectsV2Command({ Bucket: bucket.name, Prefix: prefix, ContinuationToken: token }),
    );
    // Listed in key order: everything from the first key at or after `before` is kept.
    const keys = (page.Contents ?? []).map((o) => o.Key ?? '').filter((key) => key && key < before);
    done = keys.length < (page.Contents?.length ?? 0) || !page.IsTruncated;
    token = page.NextContinuationToken;
    await deleteKeys(bucket, keys);
  }
  if (superseded.metafile) await deleteKeys(bucket, [`${root}${logMetafile(instanceId, manager, name)}`]);
}

async function deleteKeys(bucket: LogBucket, keys: string[]): Promise<void> {
  // One DeleteObject each: a log has a few objects per megabyte published, and S3-compatible
  // servers disagree on the checksum a multi-object delete must carry.
  for (const Key of keys) await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key }));
}
