import { createCipheriv, createDecipheriv, type DecipherGCM, randomBytes } from 'node:crypto';
import { GarbageCollector } from './garbage.ts';

// The stored form of a backup object: AES-256-GCM over the compressed stream, with the data key
// of the backup (never stored beside it).
//
//   byte 0       format version (1)
//   bytes 1-12   IV (random per object)
//   ...          ciphertext
//   last 16      GCM auth tag
//
// The header is authenticated too (as additional data), so a changed version byte or IV fails
// like a changed ciphertext. GCM only authenticates at the end: decrypted bytes are not to be
// trusted before the stream has ended without error, which is why restores extract into a
// staging directory and checksum the whole object first.

export const ENVELOPE_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES;
/** Bytes an envelope adds to its payload. */
export const ENVELOPE_OVERHEAD = HEADER_BYTES + TAG_BYTES;

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== 32) {
    throw new Error('the backup data key must be 32 bytes (AES-256)');
  }
}

export async function* encrypt(source: AsyncIterable<Buffer>, key: Buffer): AsyncGenerator<Buffer> {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const header = Buffer.concat([Buffer.from([ENVELOPE_VERSION]), iv]);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(header);
  yield header;
  for await (const chunk of source) {
    const out = cipher.update(chunk);
    if (out.length) yield out;
  }
  const last = cipher.final();
  if (last.length) yield last;
  yield cipher.getAuthTag();
}

/** Rejects (at the end, as GCM can only tell then) when the object was not sealed with `key` or was changed. */
export async function* decrypt(source: AsyncIterable<Uint8Array>, key: Buffer): AsyncGenerator<Buffer> {
  checkKey(key);
  let header = Buffer.alloc(0);
  let decipher: DecipherGCM | undefined;
  // The last TAG_BYTES seen so far: they may turn out to be the tag.
  let held = Buffer.alloc(0);
  // A restore's chunks are garbage as soon as they are passed on, as a backup's are.
  const garbage = new GarbageCollector();
  for await (const piece of source) {
    garbage.moved(piece.byteLength);
    let chunk = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (!decipher) {
      header = Buffer.concat([header, chunk]);
      if (header.length < HEADER_BYTES) continue;
      if (header[0] !== ENVELOPE_VERSION) {
        throw new Error(
          `backup object has envelope version ${header[0]}; this agent reads ${ENVELOPE_VERSION}`,
        );
      }
      decipher = createDecipheriv('aes-256-gcm', key, header.subarray(1, HEADER_BYTES));
      decipher.setAAD(header.subarray(0, HEADER_BYTES));
      chunk = header.subarray(HEADER_BYTES);
    }
    const joined = held.length ? Buffer.concat([held, chunk]) : chunk;
    if (joined.length <= TAG_BYTES) {
      held = Buffer.from(joined);
      continue;
    }
    held = Buffer.from(joined.subarray(joined.length - TAG_BYTES));
    const out = decipher.update(joined.subarray(0, joined.length - TAG_BYTES));
    if (out.length) yield out;
  }
  if (!decipher || held.length < TAG_BYTES) throw new Error('backup object is truncated');
  decipher.setAuthTag(held);
  try {
    const last = decipher.final();
    if (last.length) yield last;
  } catch {
    throw new Error('backup object failed authentication (wrong data key, or the object was changed)');
  }
}
