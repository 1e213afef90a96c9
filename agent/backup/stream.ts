import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { decrypt, encrypt } from './envelope.ts';
import { collectBeforePipeline, GarbageCollector } from './garbage.ts';
import { type UploadResult, type UploadTarget, uploadStream } from './multipart.ts';
import { ToolGroup, type ToolSpec } from './tools.ts';

// The two directions of the pipeline, engine-neutral:
//   backup:  tool stdout → zstd -1 → AES-256-GCM → S3 multipart (sha256 of the stored bytes)
//   restore: S3 object → sha256 check → AES-256-GCM → zstd -d → extractor stdin
// zstd runs as its own process: at level 1 it keeps up with every engine's tool on one core,
// where node's zlib gzip would be the bottleneck (LOCAL_STACK.md: ~5x slower).

export const COMPRESS: ToolSpec = { name: 'zstd', command: 'zstd', args: ['-1', '-c', '-q'] };
const DECOMPRESS: ToolSpec = { name: 'zstd -d', command: 'zstd', args: ['-d', '-c', '-q'] };

export async function streamToS3(
  tool: ToolSpec,
  target: UploadTarget,
  dataKey: Buffer,
  {
    signal,
    check,
    tap,
  }: {
    signal?: AbortSignal;
    /** Runs once every tool exited with 0 and before the upload completes; throwing aborts it. */
    check?: () => Promise<void>;
    /** Sees every chunk of the tool's output on its way to zstd (it must not throw). */
    tap?: (chunk: Buffer) => void;
  } = {},
): Promise<UploadResult> {
  signal?.throwIfAborted();
  collectBeforePipeline();
  const tools = new ToolGroup();
  const source = tools.start(tool, { stdin: 'ignore' });
  const zstd = tools.start(COMPRESS);
  const kill = () => void tools.kill();
  signal?.addEventListener('abort', kill, { once: true });
  try {
    // Failures of this hop show as a tool's exit status, checked before the upload completes.
    if (tap) {
      const seen = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          tap(chunk);
          done(null, chunk);
        },
      });
      pipeline(source.stdout!, seen, zstd.stdin!).catch(() => {});
    } else {
      pipeline(source.stdout!, zstd.stdin!).catch(() => {});
    }
    // The tool's output passes through this process on its way to zstd, 64 KiB chunks that are
    // garbage once written: they are collected as they go too (garbage.ts). Counted only after
    // zstd they were not, and a fast tool whose output compresses well (mariadb-backup, ~340 MB/s,
    // to a fifth) left tens of MB of them for V8 to collect: the bench's MariaDB backup peaked at
    // 123 MB against an 80 MB rest, 27 MB of it neither V8's heap nor live buffers (the allocator
    // keeps what dead buffers took).
    const garbage = new GarbageCollector();
    source.stdout!.on('data', (chunk: Buffer) => garbage.moved(chunk.length));
    // zstd's output is read from the start, not once the upload has begun: when a child exits,
    // Node resumes a stdout nobody reads yet and drops what its pipe held. A snapshot that passed
    // through the tool and zstd before CreateMultipartUpload answered (a small Redis, with no
    // repl-diskless-sync-delay, in milliseconds) was stored empty, and the backup succeeded;
    // its restore failed with `zstd -d: unexpected end of file`. The PassThrough keeps those
    // bytes (a chunk or two: past its buffer, backpressure stops zstd as before).
    const compressed = new PassThrough();
    pipeline(zstd.stdout!, compressed).catch(() => {});
    return await uploadStream(encrypt(compressed, dataKey), target, {
      signal,
      beforeComplete: async () => {
        await tools.succeeded();
        await check?.();
      },
    });
  } catch (err) {
    // A failing tool ends its stream early; it is reported by beforeComplete, so `err` is already
    // the tool's own complaint, or S3's. Once aborted, the abort's reason is the story (not the
    // closed pipe it caused).
    await tools.kill();
    throw signal?.aborted ? signal.reason : err;
  } finally {
    signal?.removeEventListener('abort', kill);
  }
}

export interface StoredObject {
  bucket: string;
  key: string;
  /** sha256 (hex) of the stored object, as the backup reported it. */
  checksum: string;
  dataKey: Buffer;
}

/** Where an object is: a bucket and a key. */
export interface ObjectRef {
  bucket: string;
  key: string;
}

const where = (o: ObjectRef) => `s3://${o.bucket}/${o.key}`;

/**
 * Stores a small buffer (a PostgreSQL backup's manifest) sealed with `dataKey` as the backups are
 * (the envelope, without compression), in one PutObject.
 */
export async function putSealed(
  s3: S3Client,
  object: ObjectRef,
  body: Buffer,
  dataKey: Buffer,
  signal?: AbortSignal,
): Promise<void> {
  const sealed: Buffer[] = [];
  for await (const piece of encrypt(once(body), dataKey)) sealed.push(piece);
  await s3.send(
    new PutObjectCommand({
      Bucket: object.bucket,
      Key: object.key,
      Body: Buffer.concat(sealed),
      ContentType: 'application/octet-stream',
    }),
    { abortSignal: signal },
  );
}

/** What putSealed stored, opened (rejects when it was changed or sealed with another key). */
export async function getSealed(
  s3: S3Client,
  object: ObjectRef,
  dataKey: Buffer,
  signal?: AbortSignal,
): Promise<Buffer> {
  const plain: Buffer[] = [];
  for await (const piece of decrypt(await download(s3, object, signal), dataKey)) plain.push(piece);
  return Buffer.concat(plain);
}

async function* once(body: Buffer): AsyncGenerator<Buffer> {
  yield body;
}

/** Rejects with a clear error when an object of the chain is missing or its stored bytes are not the ones backed up. */
export async function verifyObjects(
  s3: S3Client,
  chain: StoredObject[],
  signal?: AbortSignal,
): Promise<void> {
  // A restore's peak comes on top of what the agent holds when it starts, as a backup's does.
  collectBeforePipeline();
  for (const object of chain) {
    await s3
      .send(new HeadObjectCommand({ Bucket: object.bucket, Key: object.key }), { abortSignal: signal })
      .catch((err: unknown) => {
        throw notFound(err) ? new Error(`backup object ${where(object)} does not exist`) : err;
      });
  }
  for (const object of chain) {
    const actual = await sha256Of(s3, object, signal);
    if (actual !== object.checksum.toLowerCase()) {
      throw new Error(
        `backup object ${where(object)} failed its checksum (sha256 ${actual}, expected ${object.checksum}); nothing was restored`,
      );
    }
  }
}

async function sha256Of(s3: S3Client, object: StoredObject, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  // The whole object passes through here before anything is restored: its chunks are garbage as
  // soon as they are hashed, collected as they go as a backup's are (garbage.ts), or they piled up
  // to V8's external-memory limit before the restore proper began.
  const garbage = new GarbageCollector();
  for await (const chunk of await download(s3, object, signal)) {
    hash.update(chunk);
    garbage.moved(chunk.byteLength);
  }
  return hash.digest('hex');
}

async function download(
  s3: S3Client,
  object: ObjectRef,
  signal?: AbortSignal,
): Promise<AsyncIterable<Uint8Array>> {
  const out = await s3
    .send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }), { abortSignal: signal })
    .catch((err: unknown) => {
      throw notFound(err) ? new Error(`backup object ${where(object)} does not exist`) : err;
    });
  if (!out.Body) throw new Error(`backup object ${where(object)} has no body`);
  return out.Body as AsyncIterable<Uint8Array>;
}

/**
 * Streams one object, decrypted and decompressed, into the stdin of `extractor` (or, with no
 * extractor, into `outputFd`). The object's sha256 is checked again on the way (it could have been
 * replaced since verifyObjects), and GCM's tag at its end: either failing rejects, after the
 * processes were killed. What the extractor wrote is then to be thrown away by the caller.
 */
export async function extractObject(
  s3: S3Client,
  object: StoredObject,
  extractor: ToolSpec | { outputFd: number },
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  const tools = new ToolGroup();
  const zstd = tools.start(DECOMPRESS, 'outputFd' in extractor ? { stdout: extractor.outputFd } : {});
  if (!('outputFd' in extractor)) {
    const sink = tools.start(extractor);
    pipeline(zstd.stdout!, sink.stdin!).catch(() => {});
  }
  const hash = createHash('sha256');
  async function* hashed(source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
    const actual = hash.digest('hex');
    if (actual !== object.checksum.toLowerCase()) {
      throw new Error(`backup object ${where(object)} changed while it was restored (sha256 ${actual})`);
    }
  }
  const kill = () => void tools.kill();
  signal?.addEventListener('abort', kill, { once: true });
  try {
    const plain = decrypt(hashed(await download(s3, object, signal)), object.dataKey);
    const fed = await feed(plain, zstd.stdin!, signal);
    if (!fed) {
      // zstd or the extractor gave up on bytes that decrypted but had not been authenticated yet
      // (a wrong key, a changed object): feed() read on to the tag, which verified, so the tools'
      // own complaint is the story.
      throw (
        (await tools.ownFailure()) ?? new Error(`restoring ${where(object)}: the extractor stopped reading`)
      );
    }
    await tools.succeeded();
  } catch (err) {
    await tools.kill();
    throw signal?.aborted ? signal.reason : err;
  } finally {
    signal?.removeEventListener('abort', kill);
  }
}

/**
 * Writes `source` to `stdin` with backpressure and ends it; false when the reader went away early.
 * Even then the rest of `source` is read (and dropped), so that a decryption failure, reported at
 * the very end by GCM, wins over the garbage-in error of zstd.
 */
async function feed(source: AsyncIterable<Buffer>, stdin: Writable, signal?: AbortSignal): Promise<boolean> {
  let broken = false;
  const onBroken = () => {
    broken = true;
  };
  stdin.once('error', onBroken);
  stdin.once('close', onBroken);
  // What decrypt() yields is garbage once zstd has it: counted on this side too, as a backup
  // counts both sides of zstd (garbage.ts).
  const garbage = new GarbageCollector();
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      garbage.moved(chunk.length);
      if (broken || stdin.write(chunk)) continue;
      await new Promise<void>((resolve) => {
        if (stdin.destroyed) return resolve();
        const done = () => {
          stdin.off('drain', done);
          stdin.off('close', done);
          stdin.off('error', done);
          resolve();
        };
        stdin.on('drain', done);
        stdin.on('close', done);
        stdin.on('error', done);
      });
    }
    if (broken) return false;
    stdin.end();
    await new Promise<void>((resolve) => {
      if (stdin.writableFinished || stdin.destroyed) return resolve();
      stdin.once('finish', resolve);
      stdin.once('close', resolve);
    });
    return true;
  } finally {
    stdin.off('error', onBroken);
    stdin.off('close', onBroken);
  }
}

function notFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/**
 * A backup chain unpacked under `staging`, one directory per object (`full`, then
 * `incremental-1`, ...), in order; `check` looks at each directory as soon as it is written.
 */
export async function extractChain(
  s3: S3Client,
  chain: StoredObject[],
  staging: string,
  extractorFor: (dir: string) => ToolSpec,
  signal?: AbortSignal,
  check?: (dir: string) => Promise<void>,
): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, object] of chain.entries()) {
    const dir = join(staging, i === 0 ? 'full' : `incremental-${i}`);
    await mkdir(dir, { mode: 0o700 });
    await extractObject(s3, object, extractorFor(dir), signal);
    await check?.(dir);
    dirs.push(dir);
  }
  return dirs;
}
