import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

// s3rver 3.7 keeps an in-progress multipart upload as a folder of its bucket's data directory:
// <dataDir>/<bucket>/._S3rver_uploads/<uploadId>/ holding `key` (the object key, written at
// CreateMultipartUpload and never changed), `metadata` (the create request's headers as JSON) and
// one file per part (`<n>`, `<n>.md5`). CompleteMultipartUpload removes the folder. What follows
// reads and removes those folders, and writes the XML S3 answers ListMultipartUploads with.

export interface OpenUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

// s3rver's ids are 16 random bytes in hex; anything else (a path, `..`) names no upload.
const UPLOAD_ID = /^[0-9a-zA-Z]{1,128}$/;
// s3rver's own account, which owns and initiates everything it stores.
const OWNER = { id: '123456789000', name: 'S3rver' };
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** A bucket name that names a folder directly under the data directory. */
export function plausibleBucket(bucket: string): boolean {
  return bucket !== '' && bucket !== '.' && bucket !== '..' && !/[/\\\0]/.test(bucket);
}

export async function bucketExists(dataDir: string, bucket: string): Promise<boolean> {
  if (!plausibleBucket(bucket)) return false;
  const info = await stat(join(dataDir, bucket)).catch(() => undefined);
  return info?.isDirectory() ?? false;
}

function uploadsDir(dataDir: string, bucket: string): string {
  return join(dataDir, bucket, '._S3rver_uploads');
}

/** The upload, if it is open (created, neither completed nor aborted). */
export async function findUpload(
  dataDir: string,
  bucket: string,
  uploadId: string,
): Promise<OpenUpload | undefined> {
  if (!plausibleBucket(bucket) || !UPLOAD_ID.test(uploadId)) return undefined;
  const keyFile = join(uploadsDir(dataDir, bucket), uploadId, 'key');
  try {
    const [key, info] = await Promise.all([readFile(keyFile, 'utf8'), stat(keyFile)]);
    return { key, uploadId, initiated: info.mtime };
  } catch {
    return undefined;
  }
}

/**
 * Removes the upload's folder with its parts. Also used on a folder without `key`: s3rver
 * recreates the folder when a part lands after the upload was aborted.
 */
export async function removeUpload(dataDir: string, bucket: string, uploadId: string): Promise<void> {
  if (!plausibleBucket(bucket) || !UPLOAD_ID.test(uploadId)) return;
  await rm(join(uploadsDir(dataDir, bucket), uploadId), { recursive: true, force: true });
}

/** The bucket's open uploads in S3's order: by key, then by initiation time. */
export async function openUploads(dataDir: string, bucket: string): Promise<OpenUpload[]> {
  if (!plausibleBucket(bucket)) return [];
  const ids = await readdir(uploadsDir(dataDir, bucket)).catch(() => [] as string[]);
  const found = await Promise.all(ids.map((id) => findUpload(dataDir, bucket, id)));
  return found
    .filter((u): u is OpenUpload => u !== undefined)
    .sort(
      (a, b) =>
        compare(a.key, b.key) ||
        a.initiated.getTime() - b.initiated.getTime() ||
        compare(a.uploadId, b.uploadId),
    );
}

export interface ListUploadsParams {
  prefix?: string;
  delimiter?: string;
  keyMarker?: string;
  uploadIdMarker?: string;
  maxUploads?: number;
  encodingType?: string;
}

/** ListMultipartUploadsResult for `uploads` (all of the bucket's, in order) as S3 returns it. */
export function listUploadsXml(bucket: string, uploads: OpenUpload[], params: ListUploadsParams): string {
  const prefix = params.prefix ?? '';
  const delimiter = params.delimiter ?? '';
  const keyMarker = params.keyMarker ?? '';
  const uploadIdMarker = keyMarker ? (params.uploadIdMarker ?? '') : '';
  const maxUploads = Math.min(Math.max(params.maxUploads ?? 1000, 0), 1000);
  const urlEncoded = params.encodingType === 'url';
  const text = (value: string) => xml(urlEncoded ? encodeURIComponent(value).replaceAll('%2F', '/') : value);

  // After the markers: keys past key-marker, and with upload-id-marker, the later uploads of that key.
  let after = uploads.filter((u) => !keyMarker || compare(u.key, keyMarker) > 0);
  if (uploadIdMarker) {
    const sameKey = uploads.filter((u) => u.key === keyMarker);
    const at = sameKey.findIndex((u) => u.uploadId === uploadIdMarker);
    if (at >= 0) after = [...sameKey.slice(at + 1), ...after];
  }

  const entries: string[] = [];
  const prefixes = new Set<string>();
  let truncated = false;
  let next: { key: string; uploadId: string } | undefined;
  for (const upload of after) {
    if (!upload.key.startsWith(prefix)) continue;
    const cut = delimiter ? upload.key.indexOf(delimiter, prefix.length) : -1;
    const common = cut >= 0 ? upload.key.slice(0, cut + delimiter.length) : undefined;
    if (common !== undefined && prefixes.has(common)) continue;
    if (entries.length + prefixes.size >= maxUploads) {
      truncated = true;
      break;
    }
    if (common !== undefined) {
      prefixes.add(common);
      next = { key: common, uploadId: '' };
      continue;
    }
    next = upload;
    const party = `<ID>${OWNER.id}</ID><DisplayName>${OWNER.name}</DisplayName>`;
    entries.push(
      `<Upload><Key>${text(upload.key)}</Key><UploadId>${upload.uploadId}</UploadId>` +
        `<Initiator>${party}</Initiator><Owner>${party}</Owner><StorageClass>STANDARD</StorageClass>` +
        `<Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
    );
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="${XMLNS}">` +
    `<Bucket>${xml(bucket)}</Bucket>` +
    `<KeyMarker>${text(keyMarker)}</KeyMarker><UploadIdMarker>${xml(uploadIdMarker)}</UploadIdMarker>` +
    (truncated && next
      ? `<NextKeyMarker>${text(next.key)}</NextKeyMarker><NextUploadIdMarker>${xml(next.uploadId)}</NextUploadIdMarker>`
      : '') +
    (delimiter ? `<Delimiter>${text(delimiter)}</Delimiter>` : '') +
    (prefix ? `<Prefix>${text(prefix)}</Prefix>` : '') +
    (urlEncoded ? '<EncodingType>url</EncodingType>' : '') +
    `<MaxUploads>${maxUploads}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
    entries.join('') +
    [...prefixes].map((p) => `<CommonPrefixes><Prefix>${text(p)}</Prefix></CommonPrefixes>`).join('') +
    '</ListMultipartUploadsResult>'
  );
}

export interface S3ErrorBody {
  status: number;
  code: string;
  message: string;
  requestId: string;
  xml: string;
}

/** An S3 error response body, with the request id it names. */
export function s3Error(
  status: number,
  code: string,
  message: string,
  fields: Record<string, string> = {},
): S3ErrorBody {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const extra = Object.entries(fields)
    .map(([name, value]) => `<${name}>${xml(value)}</${name}>`)
    .join('');
  return {
    status,
    code,
    message,
    requestId,
    xml:
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>${code}</Code><Message>${xml(message)}</Message>${extra}<RequestId>${requestId}</RequestId></Error>`,
  };
}

export function noSuchUpload(uploadId: string): S3ErrorBody {
  return s3Error(
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    { UploadId: uploadId },
  );
}

export function noSuchBucket(bucket: string): S3ErrorBody {
  return s3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
}

function compare(a: string, b: string): number {
  // S3 orders keys by their UTF-8 bytes.
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function xml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}
