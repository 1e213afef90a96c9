import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A backup's pipeline allocates buffers for every 64 KB that flows through it (the tool's output
// as node reads it and passes it to zstd, zstd's output, then the cipher's output), each garbage
// as soon as it is copied on. V8 frees a dead buffer's memory only at a collection, and its heap
// of small objects hardly grows, so it collected when the dead buffers' memory reached its
// external-memory limit (tens of MB), and the allocator keeps what they took. A young-generation
// collection every MiB that flows on either side of zstd costs a fraction of a millisecond (the
// young generation holds little but those buffers' handles). Measured through the bundled
// pipeline: a tool fast and compressible (300 MB of zeros) peaked at 110 MB against a 64.5 MB rest
// while only zstd's side was counted, 80 MB with both. Every 512 KiB with both sides counted was
// worse (~104 MB on base64 data, against ~95 every MiB): buffers still in flight at a collection
// survive it twice and are promoted, and then wait for a full collection.

const EVERY_BYTES = 1024 * 1024;
/**
 * A full collection instead, every this many bytes counted by this process's pipelines (a byte
 * counts at each stage that hands it on: the tool's output and the upload's input on a backup,
 * so a full one comes every ~32-50 MiB of data): the chunks a minor collection finds still in
 * flight are promoted, and wait for a full one that V8 would only start tens of MB later.
 * Measured with `npm run bench -- backup` (~500 MB per engine,
 * MariaDB / PostgreSQL / Redis, agent peak backing up): minor ones alone 100.0 / 95.9 / 96.5 and
 * 98.1 / 108.3 / 97.4 MB (the PostgreSQL run held 27.7 MB of array buffers at its peak, 10.5 of
 * them the upload's two parts); every 32 MiB 94.5 / 91.6 / 92.9 MB, but node's part of the
 * pipeline 15-25% slower; every 64 MiB 96.1 / 92.1 / 93.2 MB at about the speed of minor ones alone.
 */
const MAJOR_EVERY_BYTES = 64 * 1024 * 1024;
let sinceMajor = 0;

type Collect = (options: { type: 'minor' | 'major'; flavor?: 'regular' | 'last-resort' }) => void;

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

/**
 * A full collection before a backup's pipeline starts (and a restore's): the pipeline's peak
 * comes on top of what the agent holds then, and that included the garbage of loading the backup
 * code and S3's client (the bench's agent rested at 80 MB with 33 MB of V8 heap, 21 MB where it
 * had collected). V8's last-resort flavor (the one it runs before giving up on memory) compacts
 * and hands the pages it freed back to the system, where a regular one keeps them for later: the
 * bundled agent with its engine's manager, the backup code and S3's client loaded went from 74 to
 * 70 MB (Redis), 75 to 73 (MariaDB), after a regular one. It takes ~30 ms there (a regular one
 * ~11), once per run. In the backup bench (200 MB) the backup's peak fell 1-5 MB with it under
 * the agent's runtime settings (to 89-92 MB), 5-9 MB without them; with both, and a restore's
 * chunks collected as they go (stream.ts), the restore's peak fell from 118-124 to 86-110 MB.
 */
export function collectBeforePipeline(): void {
  sinceMajor = 0;
  collector()?.({ type: 'major', flavor: 'last-resort' });
}

/** Counts the bytes a pipeline moves and collects its young garbage every MiB of them. */
export class GarbageCollector {
  private since = 0;

  moved(bytes: number): void {
    this.since += bytes;
    sinceMajor += bytes;
    if (this.since < EVERY_BYTES) return;
    this.since = 0;
    if (sinceMajor < MAJOR_EVERY_BYTES) {
      collector()?.({ type: 'minor' });
      return;
    }
    sinceMajor = 0;
    collector()?.({ type: 'major' });
  }
}
