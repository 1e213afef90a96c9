import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import type { InstanceItem, ReplicationEvent } from '../instances/model.ts';
import { getInstance, transact, updateInstance, updateItem } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { startWorkflow } from '../workflows.ts';
import { failoverOf } from './mode.ts';

// Automatic failover (issue 12 #4, DESIGN.md "High availability"). Those who see the data path
// detect: each replica's guest probes its source's engine every second and says in its heartbeat
// whether it answered. A failover starts when both sides agree the source is gone: a quorum of
// the set's members (the silent source counts as one) and the source's own engine silent past
// the failover expiry. Killing the source's agent alone stops its heartbeats, but its replicas
// still reach its engine: no quorum, no failover. A blip shorter than the expiry: none either.
// The failover itself is the eject workflow (statemachines/replica-eject.asl.yml) with a fence
// step first, started under the set's failover lock and a new term.

/** What the decision reads of one replica: its last heartbeat and what its probe said then. */
export interface ReplicaVote {
  id: string;
  /** The replica's last heartbeat (`sent`, seconds). */
  heard: number | undefined;
  /** Its probe of the source's engine at that heartbeat; undefined: it does not probe. */
  sourceReachable: boolean | undefined;
}

export interface FailoverFacts {
  now: number;
  expirySeconds: number;
  failover: 'automatic' | 'manual';
  /** The source's task: a failover never interrupts a promote, eject, restart or delete. */
  sourceTask: string;
  /** The source's last heartbeat whose engine answered (seconds). */
  sourceHealthy: number | undefined;
  locked: boolean;
  replicas: ReplicaVote[];
}

/**
 * Votes a failover needs: a majority of the whole set, in which the silent source counts as one
 * vote. One replica: 1; two: 1 (with the source's silence, 2 of 3); three: 2 (3 of 4).
 */
export function quorumOf(replicaCount: number): number {
  return Math.max(1, Math.floor((replicaCount + 1) / 2));
}

export type FailoverDecision = { start: true; votes: string[] } | { start: false; why: string };

/** The pure decision: does the set fail over now? */
export function decideFailover(f: FailoverFacts): FailoverDecision {
  if (f.failover !== 'automatic') return { start: false, why: 'failover is manual' };
  if (f.locked) return { start: false, why: 'a failover is under way' };
  if (!['NONE', 'RESTART_REQUIRED'].includes(f.sourceTask))
    return { start: false, why: `the source is busy (${f.sourceTask})` };
  if (!f.replicas.length) return { start: false, why: 'no replica to take over' };
  const silentFor = f.now - (f.sourceHealthy ?? 0);
  if (silentFor <= f.expirySeconds)
    return { start: false, why: `the source's engine answered ${Math.round(silentFor)} s ago` };
  // A vote counts while it is fresh: a replica that went silent itself says nothing any more.
  const votes = f.replicas
    .filter((r) => r.sourceReachable === false && r.heard !== undefined && f.now - r.heard <= f.expirySeconds)
    .map((r) => r.id);
  const needed = quorumOf(f.replicas.length);
  if (votes.length < needed)
    return { start: false, why: `${votes.length} of ${needed} replicas say the source is unreachable` };
  return { start: true, votes };
}

/**
 * A replica's heartbeat said its source did not answer: the conductor asks whether the set fails
 * over now, and if so starts it. At most one failover per term: the claim is one transaction,
 * conditioned on the source's term and on no lock, that raises every member's term, takes the
 * lock and puts every member in EJECTING.
 */
export async function considerFailover(projectId: string, sourceId: string): Promise<boolean> {
  const source = await getInstance(projectId, sourceId);
  if (!source || source.replica_of_id || !source.replica_ids?.length) return false;
  if (failoverOf(source) !== 'automatic') return false;
  const replicas = (await Promise.all(source.replica_ids.map((id) => getInstance(projectId, id)))).filter(
    (r): r is InstanceItem => r !== undefined,
  );
  const decision = decideFailover({
    now: Date.now() / 1000,
    expirySeconds: config.failoverExpirySeconds,
    failover: failoverOf(source),
    sourceTask: source.task_status,
    sourceHealthy: source.healthy_heartbeat,
    locked: source.failover_lock !== undefined,
    replicas: replicas.map((r) => ({
      id: r.id,
      heard: r.last_seen_heartbeat,
      sourceReachable: r.replication?.source_reachable,
    })),
  });
  if (!decision.start) {
    // Only a replica's vote asks, so this is said only while some replica cannot reach its source:
    // what an operator wants to read when a failover does not come.
    logger.info('no failover yet', { instance_id: source.id, why: decision.why });
    return false;
  }
  const term = (source.replication_term ?? 0) + 1;
  const name = `failover-${source.id}-${term}`;
  const members = [source, ...replicas];
  const claimed = await transact(
    members.map((m) =>
      updateItem(m.project_id, m.id, {
        set: {
          task_status: 'EJECTING',
          replication_term: term,
          ...(m.id === source.id ? { failover_lock: name } : {}),
        },
        remove: ['fault'],
        condition:
          m.id === source.id
            ? {
                expression:
                  'task_status IN (:none, :rr) AND attribute_not_exists(failover_lock) AND (attribute_not_exists(replication_term) OR replication_term = :old)',
                values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED', ':old': term - 1 },
              }
            : {
                expression: 'task_status IN (:none, :rr)',
                values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED' },
              },
      }),
    ),
  );
  // Another conductor took it, or a member is busy: the next vote asks again.
  if (!claimed) {
    logger.info('no failover yet', { instance_id: source.id, why: 'a member is busy, or another claim won' });
    return false;
  }
  logger.warn('automatic failover', { instance_id: source.id, term, votes: decision.votes });
  try {
    await startWorkflow('replica-eject', name, {
      project_id: projectId,
      instance_id: source.id,
      members: members.map((m) => m.id),
      failover: true,
      term,
    });
  } catch (err) {
    // Not started: the set is released as it was (the term stays raised: terms only grow).
    for (const m of members)
      await updateInstance(projectId, m.id, {
        set: { task_status: 'NONE' },
        remove: m.id === source.id ? ['failover_lock'] : [],
        condition: { expression: 'task_status = :t', values: { ':t': 'EJECTING' } },
      });
    throw err;
  }
  return true;
}

/** The event every member of the set shows (newest first, the last 10). */
export function eventsWith(item: InstanceItem | undefined, event: ReplicationEvent): ReplicationEvent[] {
  return [event, ...(item?.replication_events ?? [])].slice(0, 10);
}

export function failoverEvent(
  kind: ReplicationEvent['event'],
  term: number,
  oldSource: string,
  newSource: string | undefined,
  message: string,
): ReplicationEvent {
  return {
    time: troveTime(),
    event: kind,
    term,
    old_source: oldSource,
    ...(newSource ? { new_source: newSource } : {}),
    message,
  };
}
