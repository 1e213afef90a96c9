import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decrypt, ENVELOPE_OVERHEAD, encrypt } from '../../../agent/backup/envelope.ts';
import { PART_BYTES, uploadStream } from '../../../agent/backup/multipart.ts';
import { BUCKET, openUploads, rejection } from './helpers.ts';
import { type S3Fixture, startS3 } from './s3-fixture.ts';

// The stored format (version byte, IV, AES-256-GCM ciphertext, tag) and the multipart writer's
// edges: part boundaries, an empty stream, a failing source.

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
});
