// Picks one file out of a tar stream as the stream goes by, without changing or holding the
// stream: a PostgreSQL 17 backup keeps its backup_manifest (pg_basebackup puts it at the end of
// the tar it writes to stdout), and the agent stores a copy of it beside the backup, where the
// next incremental starts from. Reads ustar headers as pg_basebackup writes them (sizes in octal,
// or base-256 from 8 GiB on); any other member is only skipped over.

const BLOCK = 512;

export class TarMemberCapture {
  private header = Buffer.alloc(0);
  /** Bytes of the current member (its data and padding) still to go by. */
  private skip = 0;
  /** Bytes of the wanted member's data still to collect. */
  private wanted = 0;
  private parts: Buffer[] = [];
  private found?: Buffer;
  private failure?: Error;

  constructor(
    private readonly name: string,
    private readonly maxBytes: number,
  ) {}

  /** Feeds the next bytes of the stream; never throws (a failure shows in `content()`). */
  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.failure) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        if (this.wanted > 0) {
          const take = Math.min(n, this.wanted);
          this.parts.push(Buffer.from(chunk.subarray(at, at + take)));
          this.wanted -= take;
          if (this.wanted === 0) this.found = Buffer.concat(this.parts.splice(0));
        }
        this.skip -= n;
        at += n;
        continue;
      }
      const take = Math.min(BLOCK - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + take)]);
      at += take;
      if (this.header.length === BLOCK) {
        this.onHeader(this.header);
        this.header = Buffer.alloc(0);
      }
    }
  }

  /** The member's contents once the stream has passed it; throws when it was not in the stream. */
  content(): Buffer {
    if (this.failure) throw this.failure;
    if (!this.found) throw new Error(`the tar stream holds no ${this.name}`);
    return this.found;
  }

  private onHeader(h: Buffer): void {
    // The end of the archive is two zero blocks; nothing follows that matters.
    if (h.every((b) => b === 0)) return;
    if (h.toString('latin1', 257, 262) !== 'ustar') {
      this.failure = new Error('the backup stream is not a ustar archive');
      return;
    }
    const size = tarNumber(h.subarray(124, 136));
    if (size === undefined) {
      this.failure = new Error('the backup stream has a tar header with an unreadable size');
      return;
    }
    const name = cString(h.subarray(0, 100));
    const prefix = cString(h.subarray(345, 500));
    const path = (prefix ? `${prefix}/${name}` : name).replace(/^\.\//, '');
    const type = h[156];
    // '0' (or NUL, pre-POSIX) is a regular file.
    if (path === this.name && (type === 0x30 || type === 0)) {
      if (size > this.maxBytes) {
        this.failure = new Error(`${this.name} is ${size} bytes, more than the ${this.maxBytes} kept`);
        return;
      }
      this.wanted = size;
      this.parts = [];
      if (size === 0) this.found = Buffer.alloc(0);
    }
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
  }
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end === -1 ? field.length : end);
}

/** A tar number field: octal digits (NUL or space ended), or base-256 when its top bit is set. */
function tarNumber(field: Buffer): number | undefined {
  if ((field[0] ?? 0) & 0x80) {
    let value = (field[0] ?? 0) & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : undefined;
}
