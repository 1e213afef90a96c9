import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/ports.ts';
import { ProcessGroup } from '../../local/processes.ts';
import { type S3Service, startS3 } from '../../local/s3.ts';

// The local cloud's S3 service as every client sees it: s3rver behind the front that adds
// ListMultipartUploads and AbortMultipartUpload (local/s3/proxy.ts).

const BUCKET = 'multipart';
const MB = 1024 * 1024;

describe('local S3 service', { timeout: 60_000 }, () => {
  let root: string;
  let procs: ProcessGroup;
  let s3: S3Service;
  let client: S3Client;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tl-s3-'));
    procs = new ProcessGroup(join(root, 'pids.json'));
    s3 = await startS3(procs, {
      port: await freePort(),
      dataDir: join(root, 'data'),
      logDir: join(root, 'logs'),
    });
    client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    client?.destroy();
    await s3?.close();
    await procs?.stopAll();
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function read(key: string): Promise<Buffer> {
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  }

  async function listed(prefix?: string): Promise<string[]> {
    const out = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
    return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
  }

  async function create(key: string): Promise<string> {
    const out = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    expect(out.UploadId).toBeTruthy();
    return out.UploadId as string;
  }

  async function part(key: string, uploadId: string, n: number, body: Buffer): Promise<string> {
    const out = await client.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: n, Body: body }),
    );
    expect(out.ETag).toBeTruthy();
    return out.ETag as string;
  }

  it('stores and returns a 20 MB object intact, streamed through the front', async () => {
    const data = randomBytes(20 * MB);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'big/object', Body: data }));
    const back = await read('big/object');
    expect(back.length).toBe(data.length);
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );
  });

  it('lists an open multipart upload, by prefix, and aborts it', async () => {
    const key = 'open/one';
    const uploadId = await create(key);
    await part(key, uploadId, 1, randomBytes(5 * MB));
    await part(key, uploadId, 2, randomBytes(1000));
    const other = await create('elsewhere/two');

    expect(await listed()).toEqual([`elsewhere/two ${other}`, `${key} ${uploadId}`]);
    expect(await listed('open/')).toEqual([`${key} ${uploadId}`]);
    expect(await listed('elsewhere/')).toEqual([`elsewhere/two ${other}`]);
    expect(await listed('nothing/')).toEqual([]);
    const full = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'open/' }));
    expect(full.Bucket).toBe(BUCKET);
    expect(full.Prefix).toBe('open/');
    expect(full.IsTruncated).toBe(false);
    expect(full.Uploads?.[0]?.Initiated).toBeInstanceOf(Date);

    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    expect(await listed('open/')).toEqual([]);
    await expect(part(key, uploadId, 3, randomBytes(1000))).rejects.toMatchObject({ name: 'NoSuchUpload' });
    await expect(
      client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })),
    ).rejects.toMatchObject({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });
    await expect(
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] },
        }),
      ),
    ).rejects.toMatchObject({ name: 'NoSuchUpload' });
    // Its parts are gone from s3rver's data directory, and the late part left nothing behind.
    const uploads = await readdir(join(root, 'data', BUCKET, '._S3rver_uploads'));
    expect(uploads).toEqual([other]);

    await client.send(
      new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'elsewhere/two', UploadId: other }),
    );
    expect(await listed()).toEqual([]);
  });

  it('reads a completed multipart upload, which is no longer listed', async () => {
    const key = 'done/object';
    const first = randomBytes(5 * MB);
    const second = randomBytes(123_457);
    const uploadId = await create(key);
    const etags = [await part(key, uploadId, 1, first), await part(key, uploadId, 2, second)];
    expect(await listed('done/')).toEqual([`${key} ${uploadId}`]);
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
      }),
    );
    expect((await read(key)).equals(Buffer.concat([first, second]))).toBe(true);
    expect(await listed()).toEqual([]);
  });

  it('answers NoSuchBucket for a bucket that does not exist', async () => {
    await expect(client.send(new ListMultipartUploadsCommand({ Bucket: 'absent' }))).rejects.toMatchObject({
      name: 'NoSuchBucket',
    });
  });
});
