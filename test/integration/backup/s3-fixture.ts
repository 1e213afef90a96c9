import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../../../agent/engines/process.ts';
import { freePort } from '../../../local/ports.ts';

// A real s3rver for the backup tests, as local/s3.ts runs it (with OpenSSL's legacy provider),
// behind a small HTTP front that the tests talk to. s3rver 3.7 implements neither
// ListMultipartUploads (501) nor AbortMultipartUpload (405); the front answers both from
// s3rver's own upload directories (<dir>/<bucket>/._S3rver_uploads/<uploadId>/), so the tests
// can see whether an upload was left open. It can also be told to fail UploadPart requests.

export interface S3Fixture {
  /** The front's endpoint: what clients under test use. */
  endpoint: string;
  /** s3rver itself, without the front. */
  backend: string;
  client: S3Client;
  dataDir: string;
  /** Fail every UploadPart with a part number >= n (500 InternalError) until reset with undefined. */
  failPartsFrom(n: number | undefined): void;
  /**
   * While on, parts are read and dropped and Complete only closes the upload: the pipeline's own
   * throughput, without s3rver's disk writes (it stores every part, then copies them into the object).
   */
  discardUploads(on: boolean): void;
  /** Abort requests the front has served. */
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
  const dataDir = await mkdtemp(join(tmpdir(), 'tl-backup-s3-'));
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', bin, '-d', dataDir, '-a', '127.0.0.1', '-p', String(port), '--silent'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const backend = `http://127.0.0.1:${port}`;
  let failFrom: number | undefined;
  let discard = false;
  const aborts: string[] = [];
  const front = createServer((req, res) => {
    serveFront(req, res, { backend, dataDir, failFrom, discard, aborts }).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err.message));
    });
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  const address = front.address();
  if (typeof address !== 'object' || !address) throw new Error('front has no address');
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = s3ClientFor(endpoint);
  try {
    await waitFor('s3rver', () => client.send(new ListBucketsCommand({})).then(() => true), {
      timeoutMs: 20_000,
      intervalMs: 100,
      abort: () => (child.exitCode !== null ? `s3rver exited: ${stderr}` : undefined),
    });
    for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    await stopAll(child, front, dataDir);
    throw err;
  }
  return {
    endpoint,
    backend,
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
    stop: () => stopAll(child, front, dataDir),
  };
}

async function stopAll(child: ChildProcess, front: Server, dataDir: string): Promise<void> {
  front.closeAllConnections();
  await new Promise<void>((resolve) => front.close(() => resolve()));
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await rm(dataDir, { recursive: true, force: true });
}

async function serveFront(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: {
    backend: string;
    dataDir: string;
    failFrom: number | undefined;
    discard: boolean;
    aborts: string[];
  },
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://front');
  const [bucket = '', ...keyParts] = url.pathname.slice(1).split('/');
  const key = decodeURIComponent(keyParts.join('/'));
  const uploadsDir = join(ctx.dataDir, decodeURIComponent(bucket), '._S3rver_uploads');

  if (req.method === 'GET' && url.searchParams.has('uploads') && !key) {
    const uploads = [];
    for (const id of await readdir(uploadsDir).catch(() => [])) {
      const k = await readFile(join(uploadsDir, id, 'key'), 'utf8').catch(() => undefined);
      if (k === undefined) continue;
      const initiated = (await stat(join(uploadsDir, id))).mtime.toISOString();
      uploads.push(
        `<Upload><Key>${xml(k)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`,
      );
    }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Bucket>${xml(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
        `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`,
    );
    return;
  }
  const uploadId = url.searchParams.get('uploadId');
  if (req.method === 'DELETE' && uploadId && key) {
    req.resume();
    const dir = join(uploadsDir, uploadId.replace(/[^0-9a-f]/gi, ''));
    if (!(await stat(dir).catch(() => undefined))) {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code></Error>');
      return;
    }
    await rm(dir, { recursive: true, force: true });
    ctx.aborts.push(uploadId);
    res.writeHead(204);
    res.end();
    return;
  }
  const partNumber = Number(url.searchParams.get('partNumber'));
  if (req.method === 'PUT' && uploadId && ctx.failFrom !== undefined && partNumber >= ctx.failFrom) {
    req.resume();
    await once(req, 'end');
    res.writeHead(500, { 'content-type': 'application/xml' });
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
    );
    return;
  }
  if (ctx.discard && uploadId && (req.method === 'PUT' || req.method === 'POST')) {
    req.resume();
    await once(req, 'end');
    if (req.method === 'PUT') {
      res.writeHead(200, { etag: `"${partNumber}"` });
      res.end();
      return;
    }
    await rm(join(uploadsDir, uploadId.replace(/[^0-9a-f]/gi, '')), { recursive: true, force: true });
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><ETag>"discarded"</ETag></CompleteMultipartUploadResult>`,
    );
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const upstream = request(
      `${ctx.backend}${req.url}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.once('end', resolve);
        answer.once('error', reject);
      },
    );
    upstream.once('error', reject);
    req.pipe(upstream);
  });
}

function xml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
