import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decrypt, ENVELOPE_OVERHEAD, encrypt } from '../../../agent/backup/envelope.ts';
import { PART_BYTES, uploadStream } from '../../../agent/backup/multipart.ts';
import { extractObject, streamToS3 } from '../../../agent/backup/stream.ts';
import { waitUntil } from '../../../local/wait.ts';
import { BUCKET, openUploads, rejection, toolChildren } from './helpers.ts';
import { type S3Fixture, startS3 } from './s3-fixture.ts';

// The stored format (version byte, IV, AES-256-GCM ciphertext, tag) and the multipart writer's
// edges: part boundaries, an empty stream, a failing source, a backup over before its upload began.

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

describe('backup envelope', () => {
  const key = randomBytes(32);

  it('round-trips any size and any chunking', async () => {
    for (const size of [0, 1, 15, 16, 17, 100_000]) {
      const data = randomBytes(size);
      const sealed = await collect(encrypt(chunks(data, 4096), key));
      expect(sealed.length).toBe(size + ENVELOPE_OVERHEAD);
      expect(sealed[0]).toBe(1);
      for (const piece of [1, 7, 13, 16, 29, 65_536]) {
        expect((await collect(decrypt(chunks(sealed, piece), key))).equals(data)).toBe(true);
      }
    }
  });

  it('rejects a changed byte anywhere (version, IV, ciphertext, tag), a wrong key and a truncation', async () => {
    const sealed = await collect(encrypt(chunks(randomBytes(5000), 1000), key));
    for (const at of [1, 5, 12, 13, 2500, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] = (bad[at] as number) ^ 0x80;
      await rejection(collect(decrypt(chunks(bad, 777), key)), /failed authentication/);
    }
    const version = Buffer.from(sealed);
    version[0] = 2;
    await rejection(collect(decrypt(chunks(version, 777), key)), /envelope version 2/);
    await rejection(collect(decrypt(chunks(sealed, 777), randomBytes(32))), /failed authentication/);
    await rejection(collect(decrypt(chunks(sealed.subarray(0, 20), 777), key)), /truncated/);
    await rejection(
      collect(decrypt(chunks(sealed.subarray(0, sealed.length - 1), 777), key)),
      /failed authentication/,
    );
    await rejection(collect(encrypt(chunks(Buffer.alloc(1), 1), randomBytes(16))), /32 bytes/);
  });

  it('never holds the key in what it stores', async () => {
    const sealed = await collect(encrypt(chunks(Buffer.alloc(1000), 100), key));
    expect(sealed.includes(key)).toBe(false);
  });
});

describe('multipart upload', { timeout: 60_000 }, () => {
  let s3: S3Fixture;
  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
  });
  afterAll(() => s3?.stop());

  async function stored(key: string): Promise<Buffer> {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  }

  it('stores exactly the bytes it hashed, at and around part boundaries and when empty', async () => {
    // 5 parts and a bit: part buffers are filled again once their part is stored.
    const sizes = [
      0,
      1,
      PART_BYTES - 1,
      PART_BYTES,
      PART_BYTES + 1,
      2 * PART_BYTES + 12345,
      5 * PART_BYTES + 777,
    ];
    for (const size of sizes) {
      const data = randomBytes(size);
      const key = `multipart/${size}`;
      const result = await uploadStream(chunks(data, 100_000), { s3: s3.client, bucket: BUCKET, key });
      expect(result.size_bytes).toBe(size);
      expect(result.checksum).toBe(createHash('sha256').update(data).digest('hex'));
      expect((await stored(key)).equals(data)).toBe(true);
    }
    expect(await openUploads(s3)).toEqual([]);
  });

  it('aborts the upload when the source fails or the final check refuses', async () => {
    async function* failing() {
      yield randomBytes(PART_BYTES + 10);
      throw new Error('source broke');
    }
    await rejection(
      uploadStream(failing(), { s3: s3.client, bucket: BUCKET, key: 'multipart/broken' }),
      /source broke/,
    );
    await rejection(
      uploadStream(
        chunks(randomBytes(1000), 100),
        { s3: s3.client, bucket: BUCKET, key: 'multipart/refused' },
        {
          beforeComplete: async () => {
            throw new Error('tool failed');
          },
        },
      ),
      /tool failed/,
    );
    expect(await openUploads(s3)).toEqual([]);
    expect(s3.aborts.length).toBe(2);
  });

  it('stores the whole of a backup whose tool and zstd were done before the upload began', async () => {
    // S3 answers CreateMultipartUpload only once the pipeline's programs have exited, as it did
    // when a small Redis's snapshot came without repl-diskless-sync-delay: the bytes zstd wrote
    // were lost (Node drops an unread stdout when its child exits) and an empty object was stored.
    const late = Object.create(s3.client) as S3Client;
    late.send = (async (command: Parameters<S3Client['send']>[0], options?: object) => {
      if (command instanceof CreateMultipartUploadCommand) {
        await waitUntil(
          'the backup tool and zstd to exit',
          async () => ((await toolChildren()).length === 0 ? true : undefined),
          { timeoutMs: 10_000, intervalMs: 20 },
        );
      }
      return s3.client.send(command as never, options);
    }) as S3Client['send'];
    const data = randomBytes(20_000).toString('hex');
    const dataKey = randomBytes(32);
    const key = 'multipart/over-before-upload';
    const result = await streamToS3(
      { name: 'printf', command: 'printf', args: ['%s', data] },
      { s3: late, bucket: BUCKET, key },
      dataKey,
    );

    const dir = await mkdtemp(join(tmpdir(), 'tl-envelope-'));
    try {
      const path = join(dir, 'restored');
      const file = await open(path, 'wx', 0o600);
      const object = { bucket: BUCKET, key, checksum: result.checksum, dataKey };
      await extractObject(s3.client, object, { outputFd: file.fd }).finally(() => file.close());
      expect((await readFile(path, 'utf8')) === data, "the restored bytes are the tool's").toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
