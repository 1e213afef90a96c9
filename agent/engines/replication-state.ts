import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readIfExists, writeSecret } from './fs.ts';
import type { ReplicationSource } from './manager.ts';

// What this member is in its replica set, kept beside the engine (root's alone: it holds the
// replication password). Each engine renders its config from it (read-only, the source to follow),
// so a restart keeps the role; the agent changes it only through the replication operations.

/**
 * The set's durability (issue 12 #6): `sync` makes a source wait for one replica to hold each
 * commit; `async` (the default) does not wait. Kept apart from the role, so that a member keeps
 * it through detach and enable_as_master during a promote or eject.
 */
export type ReplicationMode = 'async' | 'sync';

export interface ReplicationRole {
  role: 'source' | 'replica';
  /** Set on a replica. */
  source?: ReplicationSource;
  /** The replication account (the same on every member): a source's replicas log in with it. */
  account?: { user: string; password: string };
}

/** The replication account's name on every engine: reserved, so no tenant can take or drop it. */
export const REPLICATION_USER = 'troveless_repl';

export class ReplicationState {
  private readonly file: string;
  private readonly modeFile: string;

  constructor(baseDir: string) {
    this.file = join(baseDir, 'replication.json');
    this.modeFile = join(baseDir, 'replication-mode');
  }

  async load(): Promise<ReplicationRole | undefined> {
    const text = await readIfExists(this.file);
    return text ? (JSON.parse(text) as ReplicationRole) : undefined;
  }

  async save(role: ReplicationRole | undefined): Promise<void> {
    await writeSecret(this.file, role ? JSON.stringify(role) : '');
  }

  async loadMode(): Promise<ReplicationMode> {
    return (await readIfExists(this.modeFile))?.trim() === 'sync' ? 'sync' : 'async';
  }

  async saveMode(mode: ReplicationMode): Promise<void> {
    await writeSecret(this.modeFile, mode);
  }

  async isReplica(): Promise<boolean> {
    return (await this.load())?.role === 'replica';
  }
}

/** A server id no other member of the set has (MariaDB refuses a source with its own id). */
export function serverIdOf(instanceId: string | undefined, fallback: string): number {
  const digest = createHash('sha256')
    .update(instanceId ?? fallback)
    .digest();
  return (digest.readUInt32BE(0) % 4_294_967_294) + 1;
}
