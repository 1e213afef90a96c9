import { DAY_MS, parseUtc } from './schedule.ts';
import type { BackupRetention } from './schemas.ts';

export interface BackupSummary {
  id: string;
  parent_id?: string;
  status: string;
  /** ISO timestamp; Trove's naive ones are read as UTC. */
  created: string;
  /** Made by a backup policy; only these are ever pruned, a user's own backups are theirs. */
  scheduled: boolean;
}

// Backups that hold no usable data; worth deleting once a newer good backup is kept.
const UNUSABLE = new Set(['FAILED', 'DELETE_FAILED']);

/**
 * The scheduled backups to delete, children before parents. Kept: the newest `count` COMPLETED
 * scheduled backups and those younger than `days` (either suffices), and every backup some
 * remaining backup builds on: Trove deletes a backup's incrementals with it, so pruning a parent
 * would silently take kept (or user) backups along. Running backups are never pruned.
 */
export function backupsToPrune(backups: BackupSummary[], retention: BackupRetention, now: Date): string[] {
  const byId = new Map(backups.map((b) => [b.id, b]));
  const time = (b: BackupSummary) => parseUtc(b.created).getTime();
  // An unreadable `created` gives no age to judge by, so such a backup is left alone.
  const dated = backups.filter((b) => b.scheduled && !Number.isNaN(time(b)));
  const newestFirst = (a: BackupSummary, b: BackupSummary) => time(b) - time(a) || b.id.localeCompare(a.id);

  const completed = dated.filter((b) => b.status === 'COMPLETED').sort(newestFirst);
  const kept = completed.filter(
    (b, i) =>
      (retention.count !== undefined && i < retention.count) ||
      (retention.days !== undefined && now.getTime() - time(b) < retention.days * DAY_MS),
  );
  // With days alone, a schedule whose backups have all failed for a while must not lose the
  // last good one.
  if (kept.length === 0 && completed[0]) kept.push(completed[0]);
  const keptIds = new Set(kept.map((b) => b.id));
  const newestKept = kept[0] ? time(kept[0]) : Number.NEGATIVE_INFINITY;

  const prune = new Set(
    dated
      .filter(
        (b) =>
          (b.status === 'COMPLETED' && !keptIds.has(b.id)) ||
          (UNUSABLE.has(b.status) && time(b) < newestKept),
      )
      .map((b) => b.id),
  );
  for (const b of backups) {
    if (!prune.has(b.id)) for (const a of ancestors(b, byId)) prune.delete(a.id);
  }
  const depth = (b: BackupSummary) => ancestors(b, byId).length;
  return [...prune]
    .map((id) => byId.get(id)!)
    .sort((a, b) => depth(b) - depth(a) || newestFirst(a, b))
    .map((b) => b.id);
}

/** The parent chain of a backup, nearest first; stops at a missing parent or a cycle. */
export function ancestors(b: BackupSummary, byId: ReadonlyMap<string, BackupSummary>): BackupSummary[] {
  const chain: BackupSummary[] = [];
  const seen = new Set([b.id]);
  for (let p = byId.get(b.parent_id ?? ''); p && !seen.has(p.id); p = byId.get(p.parent_id ?? '')) {
    seen.add(p.id);
    chain.push(p);
  }
  return chain;
}
