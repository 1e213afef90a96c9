import { createHash, randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { MAX_IN_FLIGHT, PART_BYTES, uploadStream } from '../../agent/backup/multipart.ts';

// A backup's upload holds a bounded number of part buffers whatever the object's size: one part
// is being sent while the next one fills (the agent's peak memory while backing up rests on it).
// S3 here is a stand-in that takes each part after a while.

/** An S3 client whose UploadPart takes `ms`; it records the bytes being sent at the worst moment. */
function slowS3(ms: number) {
  const seen = { parts: [] as Buffer[], maxInFlight: 0, completed: false };
  let inFlight = 0;
  const client = {
    async send(command: { input: Record<string, unknown> }) {
      const input = command.input;
      if (typeof input.PartNumber === 'number') {
        const body = input.Body as Buffer;
        inFlight++;
        seen.maxInFlight = Math.max(seen.maxInFlight, inFlight);
        // A copy: the uploader fills the same buffer again once this part is taken.
        seen.parts[input.PartNumber - 1] = Buffer.from(body);
        await new Promise((r) => setTimeout(r, ms));
        inFlight--;
        return { ETag: `"${input.PartNumber}"` };
      }
      if (input.MultipartUpload) {
        seen.completed = true;
        return {};
      }
      if (input.UploadId) return {};
      return { UploadId: 'upload-1' };
    },
  } as unknown as S3Client;
  return { client, seen };
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

describe('a streamed multipart upload', () => {
  it("sends one part at a time, each of S3's smallest size but the last, and stores every byte in order", async () => {
    const data = randomBytes(5 * PART_BYTES + 12345);
    const { client, seen } = slowS3(20);
    const result = await uploadStream(chunks(data, 64 * 1024), { s3: client, bucket: 'b', key: 'k' });
    expect(seen.completed).toBe(true);
    expect(seen.parts).toHaveLength(6);
    expect(seen.maxInFlight).toBe(MAX_IN_FLIGHT);
    expect(seen.parts.slice(0, -1).every((p) => p.length === 5 * 1024 * 1024)).toBe(true);
    expect(Buffer.concat(seen.parts).equals(data)).toBe(true);
    expect(result).toEqual({
      size_bytes: data.length,
      checksum: createHash('sha256').update(data).digest('hex'),
    });
  });
});
