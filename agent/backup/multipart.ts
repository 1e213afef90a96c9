import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { GarbageCollector } from './garbage.ts';

// A streamed S3 multipart upload with bounded memory: the stream is cut into parts of PART_BYTES
// (LARGE_PART_BYTES after the first thousand parts, so one object can reach ~110 GiB within S3's
// 10,000 parts), one part is being sent while the next one fills, and reading the source simply
// pauses while it is. Each part is copied straight into a buffer of its own size, and a buffer
// whose part S3 has taken fills again: an upload holds two part buffers, 10 MiB up to ~4.9 GiB
// and 24 MiB past it, whatever the object's size. Parts are S3's smallest (5 MiB) because part
// buffers were most of what a backup adds to the agent's memory: measured through the bundled
// pipeline, 8 MiB parts two in flight (24 MiB) left the agent at ~107 MB against a 64 MB rest,
// 5 MiB parts one in flight ~93 MB; one part in flight cost no throughput, since the pipeline fills
// a part slower than S3 takes one. No part waits for the garbage collector to be freed; the chunks
// it copies from are collected as they go (garbage.ts). The sha256 and size are of exactly the
// bytes stored.
// Whatever goes wrong (the source, a part, `beforeComplete`, the abort signal), the upload is
// aborted once no part is in flight any more, so no incomplete upload is left to be billed.

/** S3's smallest part (all but the last part of an upload must be at least this large). */
export const PART_BYTES = 5 * 1024 * 1024;
const LARGE_PART_BYTES = 12 * 1024 * 1024;
const LARGE_PARTS_FROM = 1_001;
const MAX_PARTS = 10_000;
/** Parts being sent at once: with the one filling, 10 MiB (24 MiB past the thousandth part) of part buffers. */
export const MAX_IN_FLIGHT = 1;

export interface UploadTarget {
  s3: S3Client;
  bucket: string;
  key: string;
}

export interface UploadResult {
  size_bytes: number;
  /** sha256 (hex) of the stored object. */
  checksum: string;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /** Runs after the last part is stored and before the upload is completed; throwing aborts it. */
  beforeComplete?: () => Promise<void>;
}

export async function uploadStream(
  source: AsyncIterable<Buffer>,
  { s3, bucket, key }: UploadTarget,
  { signal, beforeComplete }: UploadOptions = {},
): Promise<UploadResult> {
  signal?.throwIfAborted();
  const created = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/octet-stream' }),
    { abortSignal: signal },
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`S3 returned no upload id for s3://${bucket}/${key}`);

  const hash = createHash('sha256');
  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  const garbage = new GarbageCollector();
  let size = 0;
  // Buffers whose part is stored (or failed for good: then the upload is aborted anyway).
  const free: Buffer[] = [];

  const send = async (body: Buffer) => {
    const partNumber = parts.length + 1;
    if (partNumber > MAX_PARTS) throw new Error(`backup too large for one object (${MAX_PARTS} parts)`);
    parts.push({ PartNumber: partNumber });
    while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    const upload = s3
      .send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
        { abortSignal: signal },
      )
      .then((out) => {
        if (!out.ETag) throw new Error(`S3 returned no ETag for part ${partNumber}`);
        parts[partNumber - 1] = { PartNumber: partNumber, ETag: out.ETag };
      });
    const tracked = upload.finally(() => {
      inFlight.delete(tracked);
      // Retries resend the same bytes, so the buffer is only handed back once the send settled
      // (the short last part is never taken again: nextBuffer wants a whole part's size).
      free.push(body);
    });
    tracked.catch(() => {}); // seen through Promise.race / Promise.all below
    inFlight.add(tracked);
  };
  const partSize = () => (parts.length + 1 >= LARGE_PARTS_FROM ? LARGE_PART_BYTES : PART_BYTES);
  /** An empty part buffer of the next part's size: a free one when there is one. */
  const nextBuffer = (): Buffer => {
    const bytes = partSize();
    for (let b = free.pop(); b; b = free.pop()) if (b.length === bytes) return b;
    return Buffer.allocUnsafe(bytes);
  };
  let part = nextBuffer();
  let filled = 0;

  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      hash.update(chunk);
      size += chunk.length;
      garbage.moved(chunk.length);
      for (let at = 0; at < chunk.length; ) {
        const n = chunk.copy(part, filled, at);
        at += n;
        filled += n;
        if (filled === part.length) {
          await send(part);
          part = nextBuffer();
          filled = 0;
        }
      }
    }
    // The last part may be short; an upload needs at least one part even if it is empty.
    if (filled > 0 || parts.length === 0) await send(part.subarray(0, filled));
    await Promise.all(inFlight);
    await beforeComplete?.();
    signal?.throwIfAborted();
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
      { abortSignal: signal },
    );
  } catch (err) {
    // A part still being sent could land after the abort and leave storage behind: wait for them.
    await Promise.allSettled(inFlight);
    await abortUpload(s3, bucket, key, uploadId, err);
    throw err;
  }
  return { size_bytes: size, checksum: hash.digest('hex') };
}

/** Best effort, tried twice; a failure is noted on the original error, which is what the caller needs. */
async function abortUpload(s3: S3Client, bucket: string, key: string, uploadId: string, cause: unknown) {
  let last: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      return;
    } catch (err) {
      last = err;
    }
  }
  if (cause instanceof Error) {
    const reason = last instanceof Error ? last.message : String(last);
    cause.message += ` (and aborting multipart upload ${uploadId} of s3://${bucket}/${key} failed: ${reason})`;
  }
}
