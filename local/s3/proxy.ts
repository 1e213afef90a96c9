import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { pipeline } from 'node:stream';
import {
  bucketExists,
  findUpload,
  listUploadsXml,
  noSuchBucket,
  noSuchUpload,
  openUploads,
  removeUpload,
  type S3ErrorBody,
  s3Error,
} from './uploads.ts';

// The local cloud's S3 endpoint: an HTTP front on the public S3 port that streams every request
// to s3rver and its answer back unchanged, except for the two multipart operations s3rver 3.7
// lacks, ListMultipartUploads (it answers 501) and AbortMultipartUpload (405), which the front
// answers from s3rver's own upload folders (./uploads.ts). It also makes UploadPart and
// CompleteMultipartUpload of an upload that is not open fail with NoSuchUpload, as S3 does:
// s3rver would recreate an aborted upload's folder for a late part.

export type S3Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface S3Front {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/** Requests that sent `Expect: 100-continue` and have not been told to continue yet. */
const awaitingContinue = new WeakSet<IncomingMessage>();

/**
 * An HTTP server on host:port (0: any free port) serving `handler`, which owns 100-continue:
 * `forward` relays the backend's `100 Continue`, and an answer given without it closes the
 * connection (the client never sent the body).
 */
export async function serveS3(handler: S3Handler, opts: { port: number; host?: string }): Promise<S3Front> {
  const host = opts.host ?? '127.0.0.1';
  // No time limit on a request: a large upload over a slow link may take long.
  const server = createServer({ requestTimeout: 0 });
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        if (res.headersSent) res.destroy();
        else sendError(req, res, s3Error(500, 'InternalError', errorMessage(err)));
      });
  };
  server.on('request', serve);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req);
    serve(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('S3 front has no address');
  return {
    endpoint: `http://${host}:${address.port}`,
    port: address.port,
    close: () => closeServer(server),
  };
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** The s3rver compatibility front's handler: s3rver at `backend`, storing in `dataDir`. */
export function s3CompatHandler(opts: { backend: string; dataDir: string }): S3Handler {
  const { backend, dataDir } = opts;
  return async (req, res) => {
    const target = s3Target(req);
    if (!target) return forward(req, res, backend);
    const { bucket, key, query } = target;
    const uploadId = query.get('uploadId');

    if (req.method === 'GET' && !key && query.has('uploads')) {
      if (!(await bucketExists(dataDir, bucket))) return sendError(req, res, noSuchBucket(bucket));
      const maxUploads = query.get('max-uploads');
      const body = listUploadsXml(bucket, await openUploads(dataDir, bucket), {
        prefix: query.get('prefix') ?? undefined,
        delimiter: query.get('delimiter') ?? undefined,
        keyMarker: query.get('key-marker') ?? undefined,
        uploadIdMarker: query.get('upload-id-marker') ?? undefined,
        maxUploads: maxUploads !== null && /^\d+$/.test(maxUploads) ? Number(maxUploads) : undefined,
        encodingType: query.get('encoding-type') ?? undefined,
      });
      return send(req, res, 200, body);
    }

    if (uploadId !== null && key) {
      if (req.method === 'DELETE') {
        if (!(await bucketExists(dataDir, bucket))) return sendError(req, res, noSuchBucket(bucket));
        const upload = await findUpload(dataDir, bucket, uploadId);
        if (upload?.key !== key) return sendError(req, res, noSuchUpload(uploadId));
        await removeUpload(dataDir, bucket, uploadId);
        return send(req, res, 204);
      }
      const uploadPart = req.method === 'PUT' && query.has('partNumber') && !req.headers['x-amz-copy-source'];
      if (uploadPart || req.method === 'POST') {
        if (!(await bucketExists(dataDir, bucket))) return sendError(req, res, noSuchBucket(bucket));
        const upload = await findUpload(dataDir, bucket, uploadId);
        if (upload?.key !== key) return sendError(req, res, noSuchUpload(uploadId));
        if (!uploadPart) return forward(req, res, backend);
        // Aborted while the part was being stored: s3rver failed to store it, or stored it in a
        // folder it created anew. Either way the upload is gone.
        return forward(req, res, backend, async (answer) => {
          if (await findUpload(dataDir, bucket, uploadId)) return false;
          await removeUpload(dataDir, bucket, uploadId);
          answer.resume();
          sendError(req, res, noSuchUpload(uploadId));
          return true;
        });
      }
    }
    return forward(req, res, backend);
  };
}

/**
 * Bucket and key of an S3 request, addressed path-style or virtual-host-style as s3rver tells
 * them apart (its vhost middleware, with its default service endpoint amazonaws.com).
 */
export function s3Target(
  req: IncomingMessage,
): { bucket: string; key: string; query: URLSearchParams } | undefined {
  try {
    const url = new URL(req.url ?? '/', 'http://s3');
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    const vhost = /^(?:(.+)\.)?s3(-website)?([-.].+)?\.amazonaws\.com$/.exec(host);
    let path = url.pathname;
    if (vhost?.[1]) path = `/${vhost[1]}${path}`;
    else if (!vhost && host && !isIP(host) && !['localhost', hostname()].includes(host))
      path = `/${host}${path}`;
    const [bucket = '', ...rest] = path.slice(1).split('/');
    if (!bucket) return undefined;
    return {
      bucket: decodeURIComponent(bucket),
      key: decodeURIComponent(rest.join('/')),
      query: url.searchParams,
    };
  } catch {
    return undefined; // a malformed escape: s3rver answers it
  }
}

// Headers about one connection, not the request: the front and s3rver each have their own.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function endToEnd(raw: string[]): string[] {
  const named = new Set(HOP_BY_HOP);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === 'connection') {
      for (const token of (raw[i + 1] ?? '').split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!named.has(name.toLowerCase())) out.push(name, raw[i + 1] as string);
  }
  return out;
}

/**
 * Streams the request to `backend` and its answer back: method, path and query, headers (the
 * client's Host included, which its signature covers) and body, as they come. `intercept` sees the
 * answer before it is relayed and may answer itself instead (returning true).
 */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  backend: string,
  intercept?: (answer: IncomingMessage) => Promise<boolean>,
): Promise<void> {
  const done = new Promise<void>((resolve) => res.once('close', resolve));
  const to = new URL(backend);
  const upstream = request({
    host: to.hostname,
    port: to.port,
    method: req.method,
    path: req.url,
    headers: endToEnd(req.rawHeaders),
    // A connection per request: no reuse of one s3rver is about to close.
    agent: false,
  });
  upstream.on('continue', () => {
    if (awaitingContinue.delete(req)) res.writeContinue();
  });
  upstream.once('response', (answer) => {
    const relay = () => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.rawHeaders));
      pipeline(answer, res, () => {});
    };
    if (!intercept) return relay();
    intercept(answer).then(
      (handled) => {
        if (!handled) relay();
      },
      (err: unknown) => {
        answer.destroy();
        if (!res.headersSent) sendError(req, res, s3Error(500, 'InternalError', errorMessage(err)));
      },
    );
  });
  upstream.on('error', (err) => {
    req.unpipe(upstream);
    if (res.destroyed || res.writableEnded) return;
    if (res.headersSent) res.destroy();
    else sendError(req, res, s3Error(502, 'ServiceUnavailable', `S3 backend: ${err.message}`));
  });
  // The client went away: so does the backend request.
  res.once('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  // Not pipeline(): a failed backend request must not take the client's connection with it.
  req.pipe(upstream);
  return done;
}

/** Lets a client waiting for `100 Continue` send its body, for a handler that reads it itself. */
export function acceptBody(req: IncomingMessage, res: ServerResponse): void {
  if (awaitingContinue.delete(req)) res.writeContinue();
}

/** Answers with `body` (XML) or nothing; the request's body, if any, is read and dropped. */
export function send(req: IncomingMessage, res: ServerResponse, status: number, body?: string): void {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/xml';
  // The client is holding a body back for a 100 Continue that will not come.
  if (awaitingContinue.delete(req)) headers.connection = 'close';
  else req.resume();
  res.writeHead(status, headers);
  res.end(body);
}

export function sendError(req: IncomingMessage, res: ServerResponse, error: S3ErrorBody): void {
  res.setHeader('x-amz-request-id', error.requestId);
  send(req, res, error.status, error.xml);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
