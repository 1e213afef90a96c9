import { join } from 'node:path';
import { readIfExists, writeSecret } from './fs.ts';

// A member that cannot follow its source without a re-seed (issue 12): an old source that
// committed transactions its replicas never got (MariaDB answers error 1236), or a PostgreSQL
// member whose diverged history pg_rewind cannot undo (it failed, or the version has no pg_rewind
// of its own major). No amount of retrying the attach helps; its data must be replaced by a fresh
// snapshot of the source. The agent says so in every heartbeat (`replication.reseed_required`)
// until a re-seed succeeds; the control plane starts the re-seed (lib/replication/reseed.ts).

/** The attach's typed error: what the guest answers, and what the marker below records. */
export class ReseedRequired extends Error {
  override name = 'ReseedRequired';
}

export interface ReseedNeed {
  /** When this member found it (seconds): the control plane re-seeds once per `since`. */
  since: number;
  /** The engine's own words. */
  reason: string;
}

/** The marker file (reseed-required.json in the instance's base dir). */
export class ReseedMarker {
  private readonly file: string;

  constructor(baseDir: string) {
    this.file = join(baseDir, 'reseed-required.json');
  }

  async load(): Promise<ReseedNeed | undefined> {
    const text = await readIfExists(this.file).catch(() => undefined);
    if (!text) return undefined;
    try {
      return JSON.parse(text) as ReseedNeed;
    } catch {
      return undefined;
    }
  }

  /** Kept as first found: a repeated attach that fails the same way is the same need. */
  async save(reason: string): Promise<ReseedNeed> {
    const known = await this.load();
    if (known) return known;
    const need = { since: Math.floor(Date.now() / 1000), reason: reason.slice(0, 1000) };
    await writeSecret(this.file, JSON.stringify(need));
    return need;
  }

  async clear(): Promise<void> {
    await writeSecret(this.file, '');
  }
}
