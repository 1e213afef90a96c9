import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { LOG_CONTAINER, logMetafile, logPrefix } from '../../lib/logs/layout.ts';
import { troveError } from '../engines/admin.ts';
import type { GuestLogSpec } from './spec.ts';

// One guest log as Trove's guest shows and publishes it (trove/guestagent/guest_log.py): its
// status is derived from the file's size and first line against what was published last; a
// publish uploads only the bytes after the last published one, as objects of at most
// `chunkBytes` each carrying their line count, and never more than `limitBytes` per call; a log
// whose file shrank or whose first line changed since (the engine rotated it) shows Rotated, and
// the next publish discards what was published and starts over from the file's first byte.
// The file is read as a stream, one chunk at a time: a large log never sits in memory.

export { LOG_CONTAINER };

export type LogStatus =
  | 'Disabled'
  | 'Enabled'
  | 'Unavailable'
  | 'Ready'
  | 'Published'
  | 'Partial'
  | 'Rotated';

/** Trove's log view (the `log` of a log action, an item of `logs`). */
export interface LogView {
  name: string;
  type: 'USER' | 'SYS';
  status: LogStatus;
  published: number;
  pending: number;
  container: string;
  prefix: string;
  metafile: string;
}

/**
 * Where published logs go: set by the control plane in every order that may publish. The guest
 * holds no credentials for them: it posts each object through the order's upload grant, which
 * admits its own instance's prefix only, and deleting is the control plane's (lib/logs/objects.ts).
 */
export interface LogStore {
  /** Stores one object at `key` (below `root`) through the order's upload grant. */
  put(key: string, body: Buffer, contentType: string, metadata: Record<string, string>): Promise<void>;
  /** The project's own place in the bucket: `database_logs/<project_id>/`. */
  root: string;
  /** Trove's guest_log_limit: bytes a publish uploads at most. */
  limitBytes: number;
  /** Bytes per uploaded object at most (each object is read into memory once, then sent). */
  chunkBytes: number;
  /** Trove's guest_log_expiry (seconds), recorded on each object as Swift's X-Delete-At would. */
  expirySeconds: number;
}

/** What was published of one log, kept in the instance's own directory across agent restarts. */
export interface PublishedState {
  published: number;
  /** md5 of the file's first line when it was last published (Trove's log_header_digest). */
  header: string;
}

export interface LogIdentity {
  instanceId: string;
  /** Trove's datastore manager (mysql, mariadb, postgresql, redis): part of the object prefix. */
  manager: string;
}

/** The file's size and first-line digest, or size 0 when it does not exist. */
async function inspect(file: string): Promise<{ size: number; header: string; exists: boolean }> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return { size: 0, header: digest(Buffer.alloc(0)), exists: false };
  const handle = await open(file, 'r');
  try {
    // The first line, read in bounded pieces (a first line longer than 64 KiB is digested by its start).
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead);
    const end = head.indexOf(0x0a);
    return { size: info.size, header: digest(end >= 0 ? head.subarray(0, end + 1) : head), exists: true };
  } finally {
    await handle.close();
  }
}

function digest(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** Trove's object names: `log-<UTC time with microseconds>`, strictly increasing within the agent. */
let lastMicros = 0;
function objectName(): string {
  const micros = Math.max(Date.now() * 1000, lastMicros + 1);
  lastMicros = micros;
  const iso = new Date(Math.floor(micros / 1000)).toISOString().slice(0, 19);
  return `log-${iso}.${String(micros % 1_000_000).padStart(6, '0')}`;
}

/** Lines in a chunk: its newlines, plus one for a last line without its newline yet. */
function countLines(chunk: Buffer): number {
  let lines = 0;
  for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) lines++;
  return chunk.length && chunk[chunk.length - 1] !== 0x0a ? lines + 1 : lines;
}

export class GuestLog {
  constructor(
    readonly spec: GuestLogSpec,
    private readonly id: LogIdentity,
    private readonly state: { get(): Promise<PublishedState>; set(s: PublishedState): Promise<void> },
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** Trove's `<instance_id>/<datastore>-<log>/`: the objects' prefix within the container. */
  get prefix(): string {
    return logPrefix(this.id.instanceId, this.id.manager, this.spec.name);
  }

  get metafile(): string {
    return logMetafile(this.id.instanceId, this.id.manager, this.spec.name);
  }

  async enabled(): Promise<boolean> {
    return this.spec.type === 'SYS' || ((await this.spec.enabled?.()) ?? false);
  }

  async show(): Promise<LogView> {
    await this.spec.render?.();
    const [file, state] = await Promise.all([inspect(this.spec.file), this.state.get()]);
    // Asked after the file is read: the engine's answer comes over a session of the agent's own,
    // whose Connect line MariaDB writes to its general log. Read side by side, a publish's answer
    // sometimes counted that line as pending (Partial), sometimes not.
    const enabled = await this.enabled();
    const published = state.published;
    const rotated = published > 0 && (file.size < published || file.header !== state.header);
    let status: LogStatus;
    if (rotated) status = 'Rotated';
    else if (file.size > published) status = published ? 'Partial' : 'Ready';
    else status = published ? 'Published' : 'Enabled';
    // Trove's order: a log that is off, or has nothing at all, says so whatever was published.
    if (!file.size || !enabled) {
      status = this.spec.type === 'USER' ? (enabled ? 'Enabled' : 'Disabled') : 'Unavailable';
    }
    const shown = state.published > 0;
    return {
      name: this.spec.name,
      type: this.spec.type,
      status,
      published: state.published,
      pending: rotated ? file.size : file.size - published,
      container: shown ? LOG_CONTAINER : 'None',
      prefix: shown ? this.prefix : 'None',
      metafile: this.metafile,
    };
  }

  /**
   * Uploads what the file gained since the last publish (at most `limitBytes`), starting over
   * after a rotation. Each object is recorded as published as soon as it is stored, so a publish
   * that fails half-way resumes after the last stored object.
   */
  async publish(store: LogStore): Promise<{ view: LogView; superseded?: string }> {
    await this.spec.render?.();
    let state = await this.state.get();
    const file = await inspect(this.spec.file);
    let superseded: string | undefined;
    if (state.published > 0 && (file.size < state.published || file.header !== state.header)) {
      superseded = await this.discard();
      state = await this.state.get();
    }
    if (!file.exists) {
      throw troveError('BadRequest', `Cannot publish log file '${this.spec.name}' as it does not exist.`);
    }
    const end = Math.min(file.size, state.published + store.limitBytes);
    const atEof = end === file.size;
    await this.putMetafile(store, state);
    if (end > state.published) {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const upload = async (chunk: Buffer) => {
        await store.put(`${store.root}${this.prefix}${objectName()}`, chunk, 'text/plain', {
          lines: String(countLines(chunk)),
          'delete-after': String(store.expirySeconds),
        });
        state = { published: state.published + chunk.length, header: file.header };
        await this.state.set(state);
      };
      const stream = createReadStream(this.spec.file, {
        start: state.published,
        end: end - 1,
        highWaterMark: Math.min(store.chunkBytes, 1024 * 1024),
      });
      for await (const piece of stream as AsyncIterable<Buffer>) {
        pending.push(piece);
        pendingBytes += piece.length;
        while (pendingBytes >= store.chunkBytes) {
          const joined = Buffer.concat(pending, pendingBytes);
          // Objects end at a line's end where one is in reach, so a line is not split between two.
          const lastNewline = joined.lastIndexOf(0x0a, store.chunkBytes - 1);
          const cut = lastNewline >= 0 ? lastNewline + 1 : store.chunkBytes;
          await upload(joined.subarray(0, cut));
          const rest = joined.subarray(cut);
          pending = rest.length ? [Buffer.from(rest)] : [];
          pendingBytes = rest.length;
        }
      }
      if (pendingBytes) {
        const joined = Buffer.concat(pending, pendingBytes);
        // Stopped by the limit inside the file: end at the last whole line (the rest is next time's).
        const lastNewline = joined.lastIndexOf(0x0a);
        const cut = atEof || lastNewline < 0 ? joined.length : lastNewline + 1;
        await upload(joined.subarray(0, cut));
      }
    }
    await this.putMetafile(store, state);
    return { view: await this.show(), superseded };
  }

  /**
   * Forgets what was published: the next publish starts over. Answers the name every object
   * published so far sorts before, for the control plane to delete them (and the metafile).
   */
  async discard(): Promise<string> {
    const before = objectName();
    await this.state.set({ published: 0, header: '' });
    return before;
  }

  /** Trove's metafile: what was published, beside (not under) the log's prefix. */
  private async putMetafile(store: LogStore, state: PublishedState): Promise<void> {
    const body = {
      log_name: this.spec.name,
      log_type: this.spec.type,
      log_file: this.spec.file.split('/').pop(),
      log_size: state.published,
      log_header_digest: state.header,
    };
    await store.put(`${store.root}${this.metafile}`, Buffer.from(JSON.stringify(body)), 'application/json', {
      'delete-after': String(store.expirySeconds),
    });
  }
}

/** Each log's published state in one small JSON file of the instance's, replaced atomically. */
export class PublishedStates {
  constructor(private readonly path: string) {}

  private async all(): Promise<Record<string, PublishedState>> {
    const text = await readFile(this.path, 'utf8').catch(() => '{}');
    try {
      return JSON.parse(text) as Record<string, PublishedState>;
    } catch {
      return {};
    }
  }

  of(name: string) {
    return {
      get: async (): Promise<PublishedState> => (await this.all())[name] ?? { published: 0, header: '' },
      set: async (state: PublishedState): Promise<void> => {
        const all = { ...(await this.all()), [name]: state };
        await writeFile(`${this.path}.tmp`, JSON.stringify(all), { mode: 0o600 });
        await rename(`${this.path}.tmp`, this.path);
      },
    };
  }
}
