import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A backup's pipeline allocates two buffers per 64 KB that flows through it (zstd's output as
// node reads it, then the cipher's output), each garbage as soon as it is copied on. V8 frees a
// dead buffer's memory only at a collection, and its heap of small objects hardly grows, so it
// collected when the dead buffers' memory reached its external-memory limit (tens of MB): the
// pipeline's own peak, measured on 300 MB pushed through the bundled pipeline to an S3 that takes
// each part after 30 ms, was ~60 MB above its rest, ~30 MB with a young-generation collection every
// 512 KiB that flows (it costs a fraction of a millisecond: the young generation holds little but
// those buffers' handles). Against s3rver (bench/backup.ts) the agent still adds 45-57 MB: chunks
// that wait in a stream across a collection are not freed by the next young one.

const EVERY_BYTES = 512 * 1024;

type Collect = (options: { type: 'minor' }) => void;

let collect: Collect | undefined | null;

/** V8's gc(), exposed once for this process; null where it cannot be (the pipeline then only grows). */
function collector(): Collect | null {
  if (collect === undefined) {
    try {
      // Node's documented way to reach V8's gc() without starting node with --expose-gc: the flag,
      // then a fresh context, which gets `gc` as a global.
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Counts the bytes a pipeline moves and collects its young garbage every 512 KiB of them. */
export class GarbageCollector {
  private since = 0;

  moved(bytes: number): void {
    this.since += bytes;
    if (this.since < EVERY_BYTES) return;
    this.since = 0;
    collector()?.({ type: 'minor' });
  }
}
