import { recordAnswer } from '../guest/calls.ts';
import { replyMatchesOrder } from '../guest/orders.ts';
import {
  type GuestReport,
  GuestReport as GuestReportSchema,
  openEnvelope,
  type SignedEnvelope,
  verifySignature,
} from '../guest/protocol.ts';
import type { InstanceItem } from '../instances/model.ts';
import { endsWithPrepare, markBuilt } from '../instances/ready.ts';
import { getInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { recordSamples } from '../metrics/samples.ts';
import { considerFailover } from '../replication/failover.ts';
import { settleSourceMode } from '../replication/mode.ts';
import { considerReseed } from '../replication/reseed.ts';
import { engineFault } from './faults.ts';
import { guests as defaultGuests, type Guest, type GuestCache, knownStateOf } from './guests.ts';
import { changesOnlyTime, type Heartbeat, isStale, writeHeartbeat } from './heartbeats.ts';
import { deliverAnswer, forgetWaitingTask, keepAnswer, keepWaitingTasksAlive } from './tasks.ts';

// Trove's conductor: the only writer of guest-reported state. A report is applied only when it
// is signed with its instance's own key and newer than the last one of its kind. The key comes
// from a cache (lib/conductor/guests.ts) whose every use is checked against the stored key by the
// write it guards, so a heartbeat costs one table write.

export type Outcome = 'applied' | 'stale' | 'rejected' | 'unknown-instance';

/**
 * A heartbeat's `sent` is its guest's clock; within this much of the conductor's it may write its
 * time alone (the API shows it as when the guest was last heard). Further behind (a backlog, a
 * slow clock), the conductor's own time is written with it; further ahead, it is refused: a
 * report from the future would hold back every later one (LastSeen).
 */
const CLOCK_TOLERANCE_SECONDS = 30;

export async function ingest(body: string, cache: GuestCache = defaultGuests): Promise<Outcome> {
  const envelope = openEnvelope(body);
  if (!envelope) return reject('not a signed envelope');
  const guest = await cache.signer(envelope);
  if (guest === 'unknown') return 'unknown-instance';
  if (guest === 'forged') return reject(`bad signature for instance ${envelope.instance_id}`);
  let report: GuestReport;
  try {
    report = GuestReportSchema.parse(JSON.parse(envelope.body));
  } catch {
    return reject(`malformed report from instance ${guest.instanceId}`);
  }
  if (report.instance_id !== guest.instanceId)
    return reject(`report names instance ${report.instance_id}, signed for ${guest.instanceId}`);
  if (report.method === 'heartbeat') return heartbeat(cache, guest, envelope, report);
  // An operation's result needs the item as it is now (the steps waiting on it): one read, by key,
  // beside the read of the order it answers (a create's prepare waits on both).
  const { operation_id: operationId, reply_token: replyToken } = report.payload;
  const [item, matchesOrder] = await Promise.all([
    getInstance(guest.projectId, guest.instanceId),
    replyMatchesOrder(guest.instanceId, operationId, replyToken),
  ]);
  if (!item) {
    cache.forget(guest.instanceId);
    return 'unknown-instance';
  }
  if (item.wrapped_key !== guest.wrappedKey && !verifySignature((await cache.adopt(item)).key, envelope))
    return reject(`instance ${item.id}'s report is signed with a key it no longer has`);
  if (!matchesOrder)
    return reject(`reply of instance ${item.id} does not match the order ${operationId} was sent with`);
  return operationResult(item, report);
}

function reject(why: string): Outcome {
  logger.warn('guest message rejected', { reason: why });
  return 'rejected';
}

async function heartbeat(
  cache: GuestCache,
  first: Guest,
  envelope: SignedEnvelope,
  report: Heartbeat,
): Promise<Outcome> {
  const skew = report.sent - Date.now() / 1000;
  if (skew > CLOCK_TOLERANCE_SECONDS)
    return reject(
      `heartbeat of instance ${first.instanceId} is ${Math.round(skew)} s ahead of the conductor's clock`,
    );
  let guest = first;
  let timeOnly = skew >= -CLOCK_TOLERANCE_SECONDS && changesOnlyTime(guest, report);
  // At most: the write, once more after a rotation, once more with everything after a time-only
  // write found another status stored.
  for (let attempt = 0; attempt < 3; attempt++) {
    const out = await writeHeartbeat(guest, report, timeOnly);
    if (out.applied) {
      guest.known = {
        ...knownStateOf(out.before),
        service_status: report.payload.service_status,
        ...(report.payload.volume
          ? {
              volume_used_bytes: report.payload.volume.used_bytes,
              volume_total_bytes: report.payload.volume.total_bytes,
            }
          : {}),
      };
      // The guest is alive: the steps waiting on it keep waiting.
      await keepWaitingTasksAlive(guest.projectId, guest.instanceId, out.before.waiting_tasks);
      await engineFault(out.before, report.payload.service_status);
      await recordMetrics(guest, report);
      await voteForFailover(out.before, report);
      await settleWhenFollowing(out.before, report);
      await reseedWhenNeeded(out.before, report);
      return 'applied';
    }
    const stored = out.stored;
    if (!stored) {
      cache.forget(guest.instanceId);
      return 'unknown-instance';
    }
    if (stored.wrapped_key !== guest.wrappedKey) {
      // Rotated since it was cached: this report counts only if it verifies with the stored key.
      guest = await cache.adopt(stored);
      if (!verifySignature(guest.key, envelope))
        return reject(`instance ${guest.instanceId}'s heartbeat is signed with a key it no longer has`);
      continue;
    }
    guest.known = knownStateOf(stored);
    if (isStale(stored, report)) {
      // Out of order, or RESTART_REQUIRED pending: nothing applied, but the guest is alive, and
      // its samples (history, each with its own time, each batch in a slot of its own) are kept.
      await keepWaitingTasksAlive(guest.projectId, guest.instanceId, stored.waiting_tasks);
      if (report.payload.samples) await recordMetrics(guest, report);
      return 'stale';
    }
    // The time-only write found another status stored (the API or a workflow changed it): write it all.
    timeOnly = false;
  }
  return 'stale';
}

/**
 * A replica whose probe found its source's engine silent: its vote may complete a quorum
 * (lib/replication/failover.ts). A failure to decide loses nothing: the next vote, a second
 * later, asks again.
 */
async function voteForFailover(before: InstanceItem, report: Heartbeat): Promise<void> {
  if (report.payload.replication?.source_reachable !== false || !before.replica_of_id) return;
  try {
    await considerFailover(before.project_id, before.replica_of_id);
  } catch (err) {
    logger.warn('failover not started', { instance_id: before.replica_of_id, error: (err as Error).message });
  }
}

/**
 * A member whose guest says it cannot follow its source without a re-seed: it is claimed and
 * re-seeded once per need (lib/replication/reseed.ts). A failure to start loses nothing: the
 * flag stays in every heartbeat until a re-seed clears it.
 */
async function reseedWhenNeeded(before: InstanceItem, report: Heartbeat): Promise<void> {
  const need = report.payload.replication?.reseed_required;
  if (!need || need.since === before.reseed?.since) return;
  try {
    await considerReseed(before, need);
  } catch (err) {
    logger.warn('re-seed not started', { instance_id: before.id, error: (err as Error).message });
  }
}

/**
 * A replica of a sync set whose replication runs again, or for the first time since the set last
 * settled (a fenced old source that rejoined, a replica whose link came back): its source, told
 * not to wait while nobody followed it (lib/replication/mode.ts, guestModeOf), waits again.
 * Only on the change, so a heartbeat that says what the last one said costs nothing more.
 * settleSourceMode reads the source afresh: one that is itself a replica now is left alone.
 */
async function settleWhenFollowing(before: InstanceItem, report: Heartbeat): Promise<void> {
  const now = report.payload.replication;
  if (!before.replica_of_id || before.replication_mode !== 'sync') return;
  // A promote or eject under way settles its new source itself (finishSwitch), and until it ends
  // the records still name the old one.
  if (!['NONE', 'RESTART_REQUIRED'].includes(before.task_status)) return;
  if (now?.role !== 'replica' || now.running !== true || before.replication?.running === true) return;
  await settleSourceMode(before.project_id, before.replica_of_id);
}

/**
 * The samples a heartbeat carries for GET /metrics (a bucket's, or an older agent's one), a second
 * write (a TTL'd item of the operations table): a failure to keep them loses points, never the
 * heartbeat.
 */
async function recordMetrics(guest: Guest, report: Heartbeat): Promise<void> {
  const { service_status, volume, metrics, samples } = report.payload;
  const kept =
    samples ??
    (metrics
      ? [
          {
            t: report.sent,
            service_status,
            ...(volume ? { volume_used_bytes: volume.used_bytes } : {}),
            ...metrics,
          },
        ]
      : []);
  if (!kept.length) return;
  try {
    await recordSamples(guest.projectId, guest.instanceId, kept);
  } catch (err) {
    logger.warn('metrics sample not kept', { instance_id: guest.instanceId, error: (err as Error).message });
  }
}

/** An operation's result, once it is known to answer an order sent to this instance. */
async function operationResult(
  item: InstanceItem,
  report: Extract<GuestReport, { method: 'operation_result' }>,
): Promise<Outcome> {
  const { reply_token: replyToken, ok, result, error, operation, operation_id } = report.payload;
  const answer = { ok, result, error };
  // A handler is waiting for this answer (a synchronous call): record it where it looks.
  if (!replyToken) {
    await recordAnswer(operation_id, item.id, answer);
    return 'applied';
  }
  // A workflow step waits: the newest token registered for the operation (a retried step has a
  // new one), else the one the order carried.
  const waiting = item.waiting_tasks?.[operation_id];
  // A plain instance that has prepared is ACTIVE now, not once the workflow has taken the answer
  // and run MarkReady (which then finds the build ended). A failed prepare is the workflow's.
  if (operation === 'prepare' && ok && endsWithPrepare(item)) await markBuilt(item);
  let token = waiting?.token ?? replyToken;
  while (!(await deliverAnswer(token, operation, answer))) {
    // Nobody waits on that token: keep the answer for a retry of the step, unless one has
    // registered a new token meanwhile.
    const newer = waiting ? await keepAnswer(item.project_id, item.id, operation_id, answer) : undefined;
    if (!newer || newer === token) return 'stale';
    token = newer;
  }
  await forgetWaitingTask(item.project_id, item.id, operation_id, token);
  logger.info('guest operation finished', { instance_id: item.id, operation, ok });
  return 'applied';
}
