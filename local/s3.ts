import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { localCredentials } from './dynamodb.ts';
import type { ProcessGroup } from './processes.ts';
import { waitUntil } from './wait.ts';

export async function startS3(procs: ProcessGroup, opts: { port: number; dataDir: string; logDir: string }) {
  await mkdir(opts.dataDir, { recursive: true });
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
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
      String(opts.port),
      '--silent',
    ],
    logDir: opts.logDir,
  });
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const client = s3Client(endpoint);
  await waitUntil(
    'S3 server',
    async () => {
      await client.send(new ListBucketsCommand({}));
      return true;
    },
    {
      abort: () => (proc.child.exitCode !== null ? 's3rver exited' : undefined),
    },
  );
  return endpoint;
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
