import { computeDriver } from '../compute/index.ts';
import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { unwrapKey } from '../guest/keys.ts';
import { sendToGuest } from '../guest/queues.ts';
import { encryptFor } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';
import { findInstance, getInstance, transact, updateInstance, updateItem } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { accountOf } from './account.ts';
import { eventsWith, failoverEvent } from './failover.ts';
import { connectMembers, endpointOf, membersOf } from './members.ts';
import { guestModeOf, modeOf, settleSourceMode, tellGuest } from './mode.ts';
import { orderAndWait } from './orders.ts';
import { mostAdvanced } from './positions.ts';

// The steps of promote (switchover), eject (failover) and detach (statemachines/replica-*.asl.yml),
// Trove's promote_to_replica_source, eject_replica_source and detach_replica (TROVE_API.md
// §9.5-9.7). Each step is idempotent: an order carries an id the guest runs once, and the
// records are written with conditions, so a retried or repeated step changes nothing twice.

export interface SetInput {
  project_id: string;
}

async function member(projectId: string, id: string): Promise<InstanceItem> {
  const item = await getInstance(projectId, id);
  if (!item) throw new Error(`instance ${id} is gone`);
  return item;
}

/** promote: the replica asked for becomes the source; everyone else (old source too) follows it. */
export async function planPromotion(input: SetInput & { instance_id: string }) {
  const candidate = await member(input.project_id, input.instance_id);
  if (!candidate.replica_of_id) throw new Error(`instance ${candidate.id} is not a replica`);
  const source = await member(input.project_id, candidate.replica_of_id);
  const others = (source.replica_ids ?? []).filter((id) => id !== candidate.id);
  return { source_id: source.id, candidate_id: candidate.id, followers: [...others, source.id] };
}

/**
 * Which replicas are asked where they stand. In an async set, a replica whose guest has been
 * silent past the heartbeat expiry is not asked: no acknowledged write depends on it, and
 * waiting for its answer would hold the failover for the whole step's heartbeat window (then fail
 * it). It is still told to follow the new source (its order waits on its queue, or its step ends
 * in EJECTION_ERROR with a fault). A sync set asks every replica: the one that cannot answer may
 * be the only one holding the last acknowledged commit.
 */
export function askedReplicas(
  mode: 'async' | 'sync',
  replicas: { id: string; heard: number | undefined }[],
  now: number,
  expirySeconds: number,
): { asked: string[]; silent: string[] } {
  const silent =
    mode === 'async'
      ? replicas.filter((r) => r.heard === undefined || now - r.heard > expirySeconds).map((r) => r.id)
      : [];
  const asked = replicas.map((r) => r.id).filter((id) => !silent.includes(id));
  // Nobody to ask: ask them all, and the step's fault says who did not answer.
  return asked.length ? { asked, silent } : { asked: replicas.map((r) => r.id), silent: [] };
}

/** eject: the source is dead; its replicas, to be asked where each one stands. */
export async function planEjection(input: SetInput & { instance_id: string }) {
  const source = await member(input.project_id, input.instance_id);
  const replicas = (
    await Promise.all((source.replica_ids ?? []).map((id) => getInstance(input.project_id, id)))
  ).filter((r): r is InstanceItem => r !== undefined);
  const { asked, silent } = askedReplicas(
    modeOf(source),
    replicas.map((r) => ({ id: r.id, heard: r.last_seen_heartbeat })),
    Date.now() / 1000,
    config.heartbeatExpirySeconds,
  );
  if (silent.length) logger.warn('eject: silent replicas not asked', { instance_id: source.id, silent });
  return { source_id: source.id, replicas: asked, silent };
}

/** The replica with the most advanced position becomes the source (Trove's eject). */
export async function chooseCandidate(
  input: SetInput & {
    source_id: string;
    positions: { member_id: string; result?: string; error?: { Error?: string; Cause?: string } }[];
    silent?: string[];
  },
) {
  const source = await member(input.project_id, input.source_id);
  const answered = input.positions.filter((p) => !p.error && p.result !== undefined);
  const unanswered = input.positions.filter((p) => !answered.includes(p)).map((p) => p.member_id);
  // As in planEjection: only an async set may leave a replica's position uncompared.
  if (!answered.length || (unanswered.length && modeOf(source) === 'sync'))
    throw new Error(
      `replica ${unanswered.join(', ')} did not say where it stands (get_latest_txn_id): ` +
        (answered.length ? 'a sync set fails over only to its most advanced replica' : 'no replica answered'),
    );
  const candidateId = mostAdvanced(
    source.datastore.manager,
    answered.map((p) => ({ id: p.member_id, position: p.result as string })),
  );
  // A replica that was silent, or did not answer its position within the step's window, is not
  // waited on a second time: like the dead source, it gets the order to follow in its queue
  // (finishSwitch), which its agent runs first when it comes back.
  const followers = answered.map((p) => p.member_id).filter((id) => id !== candidateId);
  const absent = [...unanswered, ...(input.silent ?? [])];
  return { source_id: source.id, candidate_id: candidateId, followers, absent };
}

/**
 * A failover's first step, the fence: the old source's server is stopped through the compute
 * driver, so that a source that only looked dead (frozen, cut off) never takes another write.
 * When the driver cannot reach it, the failover goes on: the term was raised, the records make
 * it a replica, and its queue gets the order to follow the new source (finishSwitch), which its
 * guest runs before anything else when it comes back.
 */
export async function fenceSource(input: SetInput & { instance_id: string }) {
  const source = await member(input.project_id, input.instance_id);
  if (!source.server_id) return { fenced: false, reason: 'no server' };
  try {
    await computeDriver().stop(source.server_id);
    return { fenced: true };
  } catch (err) {
    logger.warn('fence: the old source could not be stopped', {
      instance_id: source.id,
      error: (err as Error).message,
    });
    return { fenced: false, reason: (err as Error).message.slice(0, 500) };
  }
}

export interface OrderInput extends SetInput {
  member_id: string;
  method: string;
  args?: Record<string, unknown>;
  /** attach_replica: the member that becomes its source. */
  attach_to?: string;
  task_token: string;
  execution_id?: string;
}

/** One order to one member, the workflow waiting for its answer. */
export async function orderMember(input: OrderInput) {
  const target = await member(input.project_id, input.member_id);
  let secrets: Record<string, unknown> | undefined;
  if (input.method === 'enable_as_master' || input.attach_to) {
    const account = await accountOf(target);
    if (!account) throw new Error(`instance ${target.id} has no replication account`);
    secrets = { account };
    if (input.attach_to) {
      const source = await member(input.project_id, input.attach_to);
      secrets = { source: { ...endpointOf(source), ...account } };
    }
  }
  // Every order of a promote, eject or failover carries the set's term: a guest refuses one older
  // than the newest it has seen (agent/term.ts), so a stale order never re-makes an old source.
  const args = {
    ...(input.args ?? {}),
    ...(target.replication_term ? { term: target.replication_term } : {}),
  };
  return orderAndWait(target, input.method, args, {
    task_token: input.task_token,
    execution_id: input.execution_id,
    secrets,
    tag: `${target.id}${input.attach_to ? `>${input.attach_to}` : ''}`,
  });
}

interface Outcome {
  member_id: string;
  error?: { Error?: string; Cause?: string };
}

/**
 * The records follow what the engines did: the candidate is the source of every member that now
 * follows it; a member whose re-pointing failed ends in PROMOTION_ERROR / EJECTION_ERROR with a
 * fault naming the step. The task of the others goes back to NONE.
 */
export async function finishSwitch(
  input: SetInput & {
    kind: 'promote' | 'eject';
    source_id: string;
    candidate_id: string;
    outcomes: Outcome[];
    /** Members not waited on (chooseCandidate): each gets the order to follow in its queue. */
    absent?: string[];
    /** An automatic failover (lib/replication/failover.ts): its event is recorded, its lock freed. */
    failover?: boolean;
    fence?: { fenced: boolean; reason?: string };
  },
) {
  const followers = input.outcomes.map((o) => o.member_id);
  const failed = input.outcomes.filter((o) => o.error);
  const errorTask = input.kind === 'promote' ? 'PROMOTION_ERROR' : 'EJECTION_ERROR';
  // After an eject the dead source is a replica too, in the records (below), and so is every
  // member that was not waited on: their queues hold the order to follow the new source.
  const ordered = [
    ...new Set([...(input.absent ?? []), input.source_id].filter((id) => !followers.includes(id))),
  ].filter((id) => id !== input.candidate_id);
  const replicaIds = [...followers, ...ordered];
  const old = await getInstance(input.project_id, input.source_id);
  const term = old?.replication_term ?? 0;
  const event = input.failover
    ? failoverEvent(
        'failover',
        term,
        input.source_id,
        input.candidate_id,
        `The source ${input.source_id} stopped answering; ${input.candidate_id} is the source in term ${term}. ` +
          (input.fence?.fenced
            ? 'The old source was fenced (its server stopped).'
            : `The old source could not be stopped (${input.fence?.reason ?? 'unknown'}); it follows the new source when it comes back.`) +
          (input.absent?.length
            ? ` Replica ${input.absent.join(', ')} did not answer; it follows the new source when its agent answers again.`
            : ''),
      )
    : undefined;
  const events = event ? { replication_events: eventsWith(old, event) } : {};
  const items = [
    updateItem(input.project_id, input.candidate_id, {
      set: { replica_ids: replicaIds, task_status: 'NONE', ...events },
      remove: ['replica_of_id', 'fault', 'failover_lock'],
    }),
  ];
  for (const o of input.outcomes) {
    items.push(
      updateItem(input.project_id, o.member_id, {
        set: {
          replica_of_id: input.candidate_id,
          task_status: o.error ? errorTask : 'NONE',
          ...(o.error ? { fault: faultOf(o.error, 'attach_replica') } : {}),
          ...events,
        },
        remove: ['replica_ids', 'failover_lock', ...(o.error ? [] : ['fault'])],
      }),
    );
  }
  // The old source in an eject is dead: it is recorded as following the new source (its queue
  // holds the order to do so), and must never take writes again; so is a member not waited on.
  for (const id of ordered) {
    items.push(
      updateItem(input.project_id, id, {
        set: { replica_of_id: input.candidate_id, task_status: 'NONE', ...events },
        remove: ['replica_ids', 'failover_lock'],
      }),
    );
  }
  if (!(await transact(items))) throw new Error(`the replica set of ${input.source_id} changed meanwhile`);
  const candidate = await member(input.project_id, input.candidate_id);
  await connectMembers(await membersOf(candidate));
  // The new source keeps the set's mode (its guest kept it); after an eject that left it no live
  // replica, it must not wait for the dead old source.
  if (modeOf(candidate) === 'sync') {
    const live = input.outcomes.filter((o) => !o.error).length;
    await tellGuest(candidate, guestModeOf(candidate, 'sync', live));
  }
  for (const id of ordered) await leaveOrderToFollow(input.project_id, id, candidate);
  return { failed: failed.map((f) => f.member_id) };
}

/**
 * The dead source's queue gets the order to follow the new source: an agent that comes back
 * within the order's age limit runs it before anything else and never serves writes again.
 * (Fencing a source that comes back later is issue 12 #4's.)
 */
async function leaveOrderToFollow(projectId: string, deadId: string, candidate: InstanceItem) {
  const dead = await getInstance(projectId, deadId);
  const account = dead ? await accountOf(dead) : undefined;
  if (!dead || !account) return;
  const key = await unwrapKey(dead.wrapped_key);
  const source = { ...endpointOf(candidate), ...account };
  const term = candidate.replication_term ? { term: candidate.replication_term } : {};
  await sendToGuest(key, dead.id, 'attach_replica', { sealed: encryptFor(key, { source }), ...term }).catch(
    () => undefined,
  );
}

/** The promote's steps before its candidate is told to leave the old source (detach_replica). */
const BEFORE_HANDOVER = new Set(['make_read_only', 'get_latest_txn_id', 'wait_for_txn']);

/**
 * A switchover that failed before its candidate was told to leave the old source gives the set its
 * writer back: the old source, made read-only for the hand-over (Redis: writes paused; PostgreSQL:
 * stopped), takes writes again, as its record (still the source, ACTIVE) says. Sent, not awaited:
 * a source whose agent is down runs it when it comes back, before anything else. From the detach
 * on, the candidate may already take writes, and the old source stays read-only (two writers are
 * worse than none); the candidate's fault names the step.
 */
async function reopenSource(projectId: string, memberIds: string[]): Promise<void> {
  const members = await Promise.all(memberIds.map((id) => getInstance(projectId, id)));
  const source = members.find((m) => m && !m.replica_of_id);
  if (!source) return;
  try {
    const term = source.replication_term ? { term: source.replication_term } : {};
    await sendToGuest(await unwrapKey(source.wrapped_key), source.id, 'make_read_only', {
      read_only: false,
      ...term,
    });
  } catch (err) {
    logger.warn('the old source was not told to take writes again', {
      instance_id: source.id,
      error: (err as Error).message,
    });
  }
}

/** A step failed: that member ends in the error task with a fault naming the step; others go back to NONE. */
export async function switchFailed(
  input: SetInput & {
    kind: 'promote' | 'eject' | 'detach';
    members: string[];
    failed: { step: string; member_id: string };
    error: { Error?: string; Cause?: string };
    failover?: boolean;
  },
) {
  const errorTask = { promote: 'PROMOTION_ERROR', eject: 'EJECTION_ERROR', detach: 'NONE' }[input.kind];
  if (input.kind === 'promote' && BEFORE_HANDOVER.has(input.failed.step))
    await reopenSource(input.project_id, input.members);
  for (const id of new Set(input.members)) {
    const failedHere = id === input.failed.member_id;
    const item = input.failover ? await getInstance(input.project_id, id) : undefined;
    // A failed failover is an event of the set too; the lock goes, so that a later vote may retry.
    const events = item
      ? {
          replication_events: eventsWith(
            item,
            failoverEvent(
              'failover_failed',
              item.replication_term ?? 0,
              // The failover's members list its source first (lib/replication/failover.ts).
              input.members[0] ?? input.failed.member_id,
              undefined,
              `Automatic failover failed at step ${input.failed.step}: ${faultOf(input.error, input.failed.step).message}`,
            ),
          ),
        }
      : {};
    await updateInstance(input.project_id, id, {
      remove: ['failover_lock'],
      set: failedHere
        ? { task_status: errorTask, fault: faultOf(input.error, input.failed.step), ...events }
        : { task_status: 'NONE', ...events },
      condition: {
        expression: 'task_status IN (:p, :e, :d)',
        values: { ':p': 'PROMOTING', ':e': 'EJECTING', ':d': 'DETACHING' },
      },
    });
  }
  return {};
}

/** detach: the replica is standalone now; it leaves its source's list. */
export async function finishDetach(input: SetInput & { instance_id: string }) {
  const item = await findInstance(input.instance_id);
  if (!item || item.project_id !== input.project_id) throw new Error(`instance ${input.instance_id} is gone`);
  if (!item.replica_of_id) return {};
  const source = await getInstance(item.project_id, item.replica_of_id);
  const at = source?.replica_ids?.indexOf(item.id) ?? -1;
  const leave = updateItem(item.project_id, item.replica_of_id, {
    condition: { expression: `replica_ids[${at}] = :me`, values: { ':me': item.id } },
  });
  if (leave.Update) leave.Update.UpdateExpression += ` REMOVE replica_ids[${at}]`;
  const done = await transact([
    updateItem(item.project_id, item.id, {
      set: { task_status: 'NONE' },
      remove: [
        'replica_of_id',
        'replication',
        'replication_mode',
        'writer',
        'fault',
        // Standalone now: no set, so no failover setting, term or events of one.
        'replication_failover',
        'replication_term',
        'replication_events',
        'failover_lock',
      ],
    }),
    ...(source && at >= 0 ? [leave] : []),
  ]);
  if (!done) throw new Error(`the replica set of ${item.replica_of_id} changed meanwhile`);
  // Standalone now: it waits for nobody, and a set it later feeds starts from async (the record's).
  // (and no longer probes a source or heartbeats every second).
  if (item.replication_mode === 'sync' || item.replication_failover === 'automatic')
    await tellGuest(item, 'async', 'manual');
  await settleSourceMode(item.project_id, item.replica_of_id);
  // Standalone now: its server keeps only its own access, and the set's members lose it as a peer.
  if (item.server_id) await computeDriver().applyAccess(item.server_id, { ...(item.access ?? {}) });
  const after = source ? await getInstance(item.project_id, source.id) : undefined;
  if (after) await connectMembers(await membersOf(after));
  return {};
}

/** A failed step's fault (the guest's or the task's own message), named after the step. */
export function faultOf(error: { Error?: string; Cause?: string }, step: string) {
  let cause = error.Cause ?? error.Error ?? 'failed';
  try {
    cause = (JSON.parse(cause) as { errorMessage?: string }).errorMessage ?? cause;
  } catch {
    // plain text from the guest
  }
  return {
    message: `Replication step ${step} failed: ${cause}`,
    created: troveTime(),
    details: [error.Error, error.Cause].filter(Boolean).join(': '),
  };
}
