import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { config } from '../config.ts';
import { unroutablePath } from '../http/edge.ts';
import { checkToken } from '../identity/tokens.ts';
import { s3Client } from '../s3.ts';
import { isSafeText } from '../text.ts';
import { LOG_CONTAINER, logRoot } from './layout.ts';

// The read-only subset of Swift's object API that python-troveclient's `log tail` and `log save`
// use (swiftclient: GET container?prefix=&format=json, HEAD object for X-Object-Meta-Lines, GET
// object), over the deployment's bucket: account AUTH_<project> is `database_logs/<project>/` in
// the bucket, the one container is `database_logs`. Authenticated by the API's own Keystone
// tokens, and a token reaches only its own project's account. Everything else is 405 (a write)
// or 501 (a read Swift has that logs do not need), never a 500.

export interface SwiftResponse {
  status: number;
  headers: Record<string, string>;
  /** Text, or bytes (an object's content). */
  body: string | Buffer;
}

const MESSAGES: Record<number, [string, string]> = {
  400: ['Bad Request', 'The request could not be understood.'],
  401: [
    'Unauthorized',
    'This server could not verify that you are authorized to access the document you requested.',
  ],
  403: ['Forbidden', 'Access was denied to this resource.'],
  404: ['Not Found', 'The resource could not be found.'],
  405: ['Method Not Allowed', 'The method is not allowed for this resource.'],
  412: ['Precondition Failed', 'A precondition for this request was not met.'],
  501: ['Not Implemented', 'This Swift subset serves published database logs only (read-only).'],
  503: ['Service Unavailable', 'The object store did not answer; try again.'],
};

/** Swift's own error page (text/html), which swiftclient shows as the ClientException's body. */
export function swiftError(status: number, method = 'GET'): SwiftResponse {
  const [title, text] = MESSAGES[status] ?? ['Error', 'The request failed.'];
  return {
    status,
    headers: {
      'content-type': 'text/html; charset=UTF-8',
      ...(status === 405 ? { allow: 'GET, HEAD' } : {}),
      ...(status === 401 ? { 'www-authenticate': 'Keystone uri=""' } : {}),
    },
    body: method === 'HEAD' ? '' : `<html><h1>${title}</h1><p>${text}</p></html>`,
  };
}

export interface SwiftRequest {
  method: string;
  rawPath: string;
  query: Record<string, string | undefined>;
  token?: string;
}

/** `/v1/AUTH_<project>[/<container>[/<object>]]`, each part decoded once. */
function parsePath(rawPath: string): { project: string; container?: string; object?: string } | undefined {
  if (unroutablePath(rawPath)) return undefined;
  const match = /^\/v1\/AUTH_([^/]+)(?:\/([^/]+)(?:\/(.+))?)?\/?$/.exec(rawPath);
  if (!match) return undefined;
  try {
    const [project, container, object] = [match[1], match[2], match[3]].map((p) =>
      p === undefined ? undefined : decodeURIComponent(p),
    );
    if (!project || project.length > 64 || !isSafeText(project)) return undefined;
    if (object !== undefined && (object.length > 1024 || !isSafeText(object))) return undefined;
    return { project, container, object };
  } catch {
    return undefined;
  }
}

const READS = new Set(['GET', 'HEAD']);

export async function serveSwift(request: SwiftRequest, s3: S3Client = s3Client()): Promise<SwiftResponse> {
  const method = request.method.toUpperCase();
  if (!request.token) return swiftError(401, method);
  const check = await checkToken(request.token);
  if (!check.ok) return swiftError(401, method);
  const path = parsePath(request.rawPath);
  if (!path) return swiftError(400, method);
  // Reseller admins are no part of this subset: a token reads its own project's account only.
  if (path.project !== check.claims.project_id) return swiftError(403, method);
  if (!READS.has(method)) return swiftError(405, method);
  if (path.container === undefined) return swiftError(501, method);
  if (path.container !== LOG_CONTAINER) return swiftError(404, method);
  const root = logRoot(path.project);
  try {
    if (path.object === undefined) {
      if (method === 'HEAD') return swiftError(501, method);
      return await listContainer(s3, root, request.query);
    }
    return await readObject(s3, root, path.object, method === 'HEAD');
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'NoSuchKey' || name === 'NotFound') return swiftError(404, method);
    return swiftError(503, method);
  }
}

/**
 * Swift's last_modified (`2026-12-04T09:40:00.123456`, UTC, microseconds): the time in a log
 * object's own name (the guest names each object after the moment it wrote it, strictly
 * increasing), else the store's. troveclient orders a log's parts by it, and S3 keeps only
 * seconds: two parts published within one second would otherwise tie.
 */
function lastModified(name: string, stored: Date | undefined): string {
  const fromName = /(?:^|\/)log-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})$/.exec(name)?.[1];
  if (fromName) return fromName;
  return `${(stored ?? new Date(0)).toISOString().slice(0, 23)}000`;
}

async function listContainer(
  s3: S3Client,
  root: string,
  query: Record<string, string | undefined>,
): Promise<SwiftResponse> {
  const prefix = query.prefix ?? '';
  const limit = Math.min(Math.max(Number(query.limit) || 10_000, 1), 10_000);
  if (query.delimiter || query.end_marker || query.path) return swiftError(501);
  const objects: {
    name: string;
    hash: string;
    bytes: number;
    content_type: string;
    last_modified: string;
  }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: config.backupBucket,
        Prefix: `${root}${prefix}`,
        StartAfter: query.marker ? `${root}${query.marker}` : undefined,
        ContinuationToken: token,
        MaxKeys: Math.min(1000, limit - objects.length),
      }),
    );
    for (const o of page.Contents ?? []) {
      const name = (o.Key ?? '').slice(root.length);
      objects.push({
        name,
        hash: (o.ETag ?? '').replaceAll('"', ''),
        bytes: o.Size ?? 0,
        content_type: name.endsWith('_metafile') ? 'application/json' : 'text/plain',
        last_modified: lastModified(name, o.LastModified),
      });
    }
    token = page.IsTruncated && objects.length < limit ? page.NextContinuationToken : undefined;
  } while (token);
  const headers = {
    'x-container-object-count': String(objects.length),
    'x-container-bytes-used': String(objects.reduce((n, o) => n + o.bytes, 0)),
    'x-timestamp': (Date.now() / 1000).toFixed(5),
  };
  if (query.format === 'json') {
    return {
      status: 200,
      headers: { ...headers, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(objects),
    };
  }
  if (query.format && query.format !== 'plain') return swiftError(501);
  if (!objects.length) return { status: 204, headers, body: '' };
  return {
    status: 200,
    headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' },
    body: `${objects.map((o) => o.name).join('\n')}\n`,
  };
}

async function readObject(
  s3: S3Client,
  root: string,
  name: string,
  headOnly: boolean,
): Promise<SwiftResponse> {
  const key = `${root}${name}`;
  const out = headOnly
    ? await s3.send(new HeadObjectCommand({ Bucket: config.backupBucket, Key: key }))
    : await s3.send(new GetObjectCommand({ Bucket: config.backupBucket, Key: key }));
  const modified = out.LastModified ?? new Date(0);
  const headers: Record<string, string> = {
    'content-type': out.ContentType ?? 'application/octet-stream',
    'content-length': String(out.ContentLength ?? 0),
    etag: (out.ETag ?? '').replaceAll('"', ''),
    'last-modified': modified.toUTCString(),
    'x-timestamp': (modified.getTime() / 1000).toFixed(5),
    'accept-ranges': 'bytes',
  };
  for (const [k, v] of Object.entries(out.Metadata ?? {})) {
    if (k === 'delete-after') continue;
    headers[`x-object-meta-${k}`] = v;
  }
  if (headOnly) return { status: 200, headers, body: '' };
  const body = Buffer.from(
    (await (
      out as { Body?: { transformToByteArray(): Promise<Uint8Array> } }
    ).Body?.transformToByteArray()) ?? [],
  );
  return { status: 200, headers, body };
}
