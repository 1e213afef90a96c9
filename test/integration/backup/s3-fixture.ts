import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../../../local/ports.ts';
import { ProcessGroup } from '../../../local/processes.ts';
import { acceptBody, forward, type S3Front, s3Target, send, serveS3 } from '../../../local/s3/proxy.ts';
import { removeUpload, s3Error, xml } from '../../../local/s3/uploads.ts';
import { type S3Service, startS3 as startLocalS3 } from '../../../local/s3.ts';

// The local cloud's own S3 service (local/s3.ts: s3rver behind the front that adds
// ListMultipartUploads and AbortMultipartUpload), with a thin test-only front of its own before
// it, which can fail UploadPart requests or drop parts on demand, and counts the aborts it passed on.

export interface S3Fixture {
  /** The fault-injecting front's endpoint: what clients under test use. */
  endpoint: string;
  /** The local cloud's S3 endpoint behind it. */
  local: string;
  client: S3Client;
  dataDir: string;
  /** Fail every UploadPart with a part number >= n (500 InternalError) until reset with undefined. */
  failPartsFrom(n: number | undefined): void;
  /**
   * While on, parts are read and dropped and Complete only closes the upload: the pipeline's own
   * throughput, without s3rver's disk writes (it stores every part, then copies them into the object).
   */
  discardUploads(on: boolean): void;
  /** Aborts that succeeded (204) through the front. */
  readonly aborts: string[];
  /** Path of the file s3rver stores an object's bytes in. */
  objectFile(bucket: string, key: string): string;
  stop(): Promise<void>;
}

export function s3ClientFor(endpoint: string, maxAttempts?: number): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(maxAttempts ? { maxAttempts } : {}),
  });
}

export async function startS3(buckets: string[]): Promise<S3Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'tl-backup-s3-'));
  const dataDir = join(root, 'data');
  const procs = new ProcessGroup(join(root, 'pids.json'));
  let service: S3Service | undefined;
  let front: S3Front | undefined;
  let client: S3Client | undefined;
  const stop = async () => {
    client?.destroy();
    await front?.close();
    await service?.close();
    await procs.stopAll();
    await rm(root, { recursive: true, force: true });
  };

  let failFrom: number | undefined;
  let discard = false;
  const aborts: string[] = [];
  try {
    service = await startLocalS3(procs, { port: await freePort(), dataDir, logDir: join(root, 'logs') });
    const local = service.endpoint;
    front = await serveS3((req, res) => inject(req, res, { local, dataDir, failFrom, discard, aborts }), {
      port: 0,
    });
    client = s3ClientFor(front.endpoint);
    for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    endpoint: front.endpoint,
    local: service.endpoint,
    client,
    dataDir,
    aborts,
    failPartsFrom(n) {
      failFrom = n;
    },
    discardUploads(on) {
      discard = on;
    },
    objectFile: (bucket, key) => {
      const parts = key.split('/');
      const last = parts.pop() as string;
      return join(dataDir, bucket, ...parts, `${last}._S3rver_object`);
    },
    stop,
  };
}

async function inject(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: { local: string; dataDir: string; failFrom: number | undefined; discard: boolean; aborts: string[] },
): Promise<void> {
  const target = s3Target(req);
  const uploadId = target?.query.get('uploadId');
  if (!target || !uploadId) return forward(req, res, ctx.local);
  const partNumber = Number(target.query.get('partNumber'));

  if (req.method === 'DELETE') {
    res.once('finish', () => {
      if (res.statusCode === 204) ctx.aborts.push(uploadId);
    });
    return forward(req, res, ctx.local);
  }
  if (req.method === 'PUT' && ctx.failFrom !== undefined && partNumber >= ctx.failFrom) {
    await drain(req, res);
    const error = s3Error(500, 'InternalError', 'injected');
    res.setHeader('x-amz-request-id', error.requestId);
    return send(req, res, 500, error.xml);
  }
  if (ctx.discard && (req.method === 'PUT' || req.method === 'POST')) {
    await drain(req, res);
    if (req.method === 'PUT') {
      res.writeHead(200, { etag: `"${partNumber}"` });
      res.end();
      return;
    }
    await removeUpload(ctx.dataDir, target.bucket, uploadId);
    return send(
      req,
      res,
      200,
      '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Bucket>${xml(target.bucket)}</Bucket><Key>${xml(target.key)}</Key><ETag>"discarded"</ETag></CompleteMultipartUploadResult>`,
    );
  }
  return forward(req, res, ctx.local);
}

/** Reads the whole body (as S3 does before it fails a part), so the client sees the answer. */
async function drain(req: IncomingMessage, res: ServerResponse): Promise<void> {
  acceptBody(req, res);
  if (req.readableEnded) return;
  req.resume();
  await once(req, 'end');
}
