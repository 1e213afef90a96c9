import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The fence on the guest's side (DESIGN.md "High availability"): every order of a promote, eject
// or failover carries its replica set's term, raised at each promotion. The guest keeps the
// newest term it has seen and refuses an order of an older one, so an order of a superseded
// term (left on a queue, replayed, retried late) can never make an old source again.

/** Whether an order of `ordered` term may run on a guest that has seen `known`. */
export function termAllows(known: number, ordered: number | undefined): boolean {
  return ordered === undefined || ordered >= known;
}

export class StaleTerm extends Error {
  override name = 'StaleTerm';
}

/** The newest term this guest has seen, kept beside the engine (survives restarts). */
export class TermStore {
  private readonly file: string;
  private known: number;
  /** The set's failover setting as its last set_replication_mode said (agent/guest.ts). */
  private readonly failoverFile: string;
  failover: 'automatic' | 'manual';

  constructor(baseDir: string) {
    this.file = join(baseDir, 'replication-term');
    this.failoverFile = join(baseDir, 'replication-failover');
    this.known = Number(read(this.file) ?? 0) || 0;
    this.failover = read(this.failoverFile)?.trim() === 'automatic' ? 'automatic' : 'manual';
  }

  get term(): number {
    return this.known;
  }

  /** Refuses an order of an older term; remembers a newer one. */
  admit(method: string, ordered: unknown): void {
    const term = typeof ordered === 'number' && Number.isInteger(ordered) ? ordered : undefined;
    if (!termAllows(this.known, term))
      throw new StaleTerm(`${method} belongs to term ${term}, older than this member's term ${this.known}`);
    if (term !== undefined && term > this.known) {
      this.known = term;
      writeFileSync(this.file, String(term), { mode: 0o600 });
    }
  }

  setFailover(value: unknown): void {
    if (value !== 'automatic' && value !== 'manual') return;
    this.failover = value;
    writeFileSync(this.failoverFile, value, { mode: 0o600 });
  }
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
