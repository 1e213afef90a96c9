import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// A directory of small JSON records, one file per id, root's alone (0700 dir, 0600 files): what
// the compute host keeps of its writers and ports between runs. Each save is written to a
// temporary file and renamed, so a crash never leaves half a record.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A lowercase UUID: the ids of writers (replica sets' ids) and of ports (instance ids). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

export class JsonRecords<T> {
  constructor(
    private readonly dir: string,
    /** Ids reach file paths: only ids this says are well-formed are ever read or written. */
    private readonly isId: (id: string) => boolean,
  ) {}

  /** Every readable record with a well-formed name; an unreadable one is reported and skipped. */
  async load(onError: (id: string, err: unknown) => void): Promise<Array<[string, T]>> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const out: Array<[string, T]> = [];
    for (const name of await readdir(this.dir)) {
      const id = name.replace(/\.json$/, '');
      if (!name.endsWith('.json') || !this.isId(id)) continue;
      try {
        out.push([id, JSON.parse(await readFile(join(this.dir, name), 'utf8')) as T]);
      } catch (err) {
        onError(id, err);
      }
    }
    return out;
  }

  async save(id: string, record: T): Promise<void> {
    if (!this.isId(id)) throw new RangeError(`${id} is not a record id`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `${id}.json`);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await rename(tmp, path);
  }

  async remove(id: string): Promise<void> {
    if (!this.isId(id)) return;
    await rm(join(this.dir, `${id}.json`), { force: true });
  }
}
