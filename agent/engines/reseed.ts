import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSecret } from './fs.ts';

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

/**
 * The marker file (reseed-required.json in the instance's base dir), read once at start and kept
 * in memory: every heartbeat (each second in a set with automatic failover) asks for it.
 */
export class ReseedMarker {
  private readonly file: string;
  private need: ReseedNeed | undefined;

  constructor(baseDir: string) {
    this.file = join(baseDir, 'reseed-required.json');
    this.need = parse(existsSync(this.file) ? readFileSync(this.file, 'utf8') : '');
  }

  current(): ReseedNeed | undefined {
    return this.need;
  }

  /** Kept as first found: a repeated attach that fails the same way is the same need. */
  async save(reason: string): Promise<ReseedNeed> {
    if (this.need) return this.need;
    const need = { since: Math.floor(Date.now() / 1000), reason: reason.slice(0, 1000) };
    await writeSecret(this.file, JSON.stringify(need));
    this.need = need;
    return need;
  }

  async clear(): Promise<void> {
    if (!this.need) return;
    await writeSecret(this.file, '');
    this.need = undefined;
  }
}

function parse(text: string): ReseedNeed | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as ReseedNeed;
  } catch {
    return undefined;
  }
}
