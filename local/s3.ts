import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { localCredentials } from './dynamodb.ts';
import { freePort } from './ports.ts';
import { type ProcessGroup, untilReady } from './processes.ts';
import { s3CompatHandler, serveS3 } from './s3/proxy.ts';

export interface S3Service {
  /** The endpoint every client uses: the front on the public port. */
  endpoint: string;
  /** s3rver itself, on an internal port: without ListMultipartUploads and AbortMultipartUpload. */
  backend: string;
  /** Stops the front; s3rver is stopped with the process group. */
  close(): Promise<void>;
}

/**
 * s3rver on a free internal port (or `backendPort`), behind the front (./s3/proxy.ts) on `port`,
 * run in this process: it streams everything to s3rver and answers the multipart operations
 * s3rver lacks from its upload folders under `dataDir`.
 */
export async function startS3(
  procs: ProcessGroup,
  opts: { port: number; dataDir: string; logDir: string; backendPort?: number },
): Promise<S3Service> {
  await mkdir(opts.dataDir, { recursive: true });
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const backendPort = opts.backendPort ?? (await freePort());
  const proc = await procs.start({
    name: 's3',
    // s3rver's ListObjectsV2 pagination needs MD5 from OpenSSL's legacy provider (LOCAL_STACK.md).
    command: process.execPath,
    args: [
      '--openssl-legacy-provider',
      bin,
      '-d',
      opts.dataDir,
      '-a',
      '127.0.0.1',
      '-p',
      String(backendPort),
      '--silent',
    ],
    logDir: opts.logDir,
  });
  const backend = `http://127.0.0.1:${backendPort}`;
  const front = await serveS3(s3CompatHandler({ backend, dataDir: opts.dataDir }), { port: opts.port });
  const direct = s3Client(backend);
  const through = s3Client(front.endpoint);
  try {
    await untilReady(proc, 'S3 server', async () => {
      await direct.send(new ListBucketsCommand({}));
      return true;
    });
    await through.send(new ListBucketsCommand({}));
  } catch (err) {
    await front.close();
    throw err;
  } finally {
    direct.destroy();
    through.destroy();
  }
  return { endpoint: front.endpoint, backend, close: front.close };
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: localCredentials,
    // s3rver stores streamed uploads with the chunk framing inside unless checksums are off.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
export { localCredentials };
