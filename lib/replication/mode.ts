import { randomUUID } from 'node:crypto';
import { config } from '../config.ts';
import { BadRequest, UnprocessableEntity } from '../errors.ts';
import { unwrapKey } from '../guest/keys.ts';
import { sendToGuest } from '../guest/queues.ts';
import type { InstanceItem } from '../instances/model.ts';
import { getInstance, transact, updateItem } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { membersOf } from './members.ts';

// A replica set's durability (issue 12 #6). `sync`: the source's commit returns once one replica
// holds it (MariaDB semi-sync, PostgreSQL synchronous_standby_names = ANY 1); `async` (Trove's
// only behaviour, the default): it does not wait. The mode is the set's, as an RDS user sets
// Multi-AZ on the primary: recorded on every member (each view shows it), chosen at create
// (a standalone instance's, or the first replica's, body) or by PUT on any member, and kept by
// promote and eject (every member's guest keeps it, so whoever becomes the source waits).

export type ReplicationMode = 'async' | 'sync';

export function modeOf(item: InstanceItem): ReplicationMode {
  return item.replication_mode ?? 'async';
}

/** Redis acknowledges a write before any replica has it: it has no way to wait for one. */
export function assertModeSupported(manager: string, mode: ReplicationMode | undefined): void {
  if (mode === 'sync' && manager === 'redis')
    throw new BadRequest(
      'Replication mode sync is not supported for datastore redis: Redis cannot make its source wait for a replica.',
    );
}

/**
 * What one member's guest is told: the set's mode, except that a source with no replica
 * following it (the last one detached or deleted, an eject that left only the dead old source, a
 * member that is recorded as its replica but does not stream from it) does not wait, else no
 * commit would ever return; it waits again once a replica follows it. `liveReplicas` is how many
 * follow it now (liveReplicasOf): never the records' count, which keeps a fenced old source.
 */
export function guestModeOf(
  member: InstanceItem,
  mode: ReplicationMode,
  liveReplicas: number,
): ReplicationMode {
  if (member.replica_of_id) return mode;
  return liveReplicas > 0 ? mode : 'async';
}

/**
 * Whether `replica` follows `sourceId` now, by the records and by its own guest: its last
 * heartbeat, fresh, said that its replication runs. A fenced old source (its server stopped, or
 * back but on a history the source forked from) is recorded as a replica and follows nobody.
 */
export function followsNow(
  replica: InstanceItem,
  sourceId: string,
  now: number,
  expirySeconds: number,
): boolean {
  return (
    replica.replica_of_id === sourceId &&
    replica.replication?.role === 'replica' &&
    replica.replication.running === true &&
    replica.last_seen_heartbeat !== undefined &&
    now - replica.last_seen_heartbeat <= expirySeconds
  );
}

/** How many of `source`'s replicas follow it now; `ready` ones count whatever they last reported. */
export async function liveReplicasOf(
  source: InstanceItem,
  ready: string[] = [],
  known: InstanceItem[] = [],
): Promise<number> {
  const now = Date.now() / 1000;
  const replicas = await Promise.all(
    (source.replica_ids ?? []).map(
      async (id) => known.find((m) => m.id === id) ?? (await getInstance(source.project_id, id)),
    ),
  );
  return replicas.filter(
    (r) =>
      r !== undefined &&
      (ready.includes(r.id)
        ? r.replica_of_id === source.id
        : followsNow(r, source.id, now, config.heartbeatExpirySeconds)),
  ).length;
}

export type FailoverSetting = 'automatic' | 'manual';

export function failoverOf(item: InstanceItem): FailoverSetting {
  return item.replication_failover ?? 'manual';
}

/**
 * Orders `set_replication_mode` to one member's guest (run once per order id; repeating is
 * harmless). It carries the set's failover setting too: with `automatic`, a replica's guest probes
 * its source's engine every second and every member heartbeats every second (agent/guest.ts).
 */
export async function tellGuest(
  member: InstanceItem,
  mode: ReplicationMode,
  failover: FailoverSetting = failoverOf(member),
): Promise<void> {
  const key = await unwrapKey(member.wrapped_key);
  await sendToGuest(
    key,
    member.id,
    'set_replication_mode',
    { mode, failover, ...(member.replication_term ? { term: member.replication_term } : {}) },
    undefined,
    `set_replication_mode:${randomUUID()}`,
  );
}

/**
 * `PUT /instances/{id}` with `replication` (`mode`, `failover`, or both): every member records
 * it, then every guest gets it.
 */
export async function updateReplicationMode(
  item: InstanceItem,
  change: { mode?: ReplicationMode; failover?: FailoverSetting },
): Promise<void> {
  const mode = change.mode ?? modeOf(item);
  const failover = change.failover ?? failoverOf(item);
  assertModeSupported(item.datastore.manager, mode);
  const members = await membersOf(item);
  // No member may be in the middle of a promote, eject or build: they would miss the change.
  const written = await transact(
    members.map((m) =>
      updateItem(m.project_id, m.id, {
        set: { replication_mode: mode, replication_failover: failover },
        condition: {
          expression: 'task_status IN (:none, :rr)',
          values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED' },
        },
      }),
    ),
  );
  if (!written)
    throw new UnprocessableEntity(
      `Instance ${item.id} is not currently available for an action to be performed (a member of its replica set is busy).`,
    );
  // Replicas first: a MariaDB source in sync waits for a replica that acknowledges.
  const ordered = [...members].sort((a, b) => Number(!a.replica_of_id) - Number(!b.replica_of_id));
  if (members.length > 1)
    for (const m of ordered)
      await tellGuest(
        m,
        guestModeOf(m, mode, m.replica_of_id ? 0 : await liveReplicasOf(m, [], members)),
        failover,
      );
}

/**
 * The source's guest after its set changed (a replica ready, detached or deleted, or a member
 * that starts following it again, lib/conductor/apply.ts): it waits exactly when the set is sync
 * and a replica follows it. Best effort: the records are already right, and the next change sends
 * it again.
 */
export async function settleSourceMode(
  projectId: string,
  sourceId: string,
  also?: InstanceItem,
): Promise<void> {
  try {
    const source = await getInstance(projectId, sourceId);
    if (!source || source.replica_of_id) return;
    if (modeOf(source) === 'async' && failoverOf(source) === 'manual') return;
    const mode = modeOf(source);
    if (also) await tellGuest(also, mode);
    await tellGuest(source, guestModeOf(source, mode, await liveReplicasOf(source, also ? [also.id] : [])));
  } catch (err) {
    logger.warn('replication mode not sent to the source', { instance_id: sourceId, error: err as Error });
  }
}
