import { troveTime } from '../dynamo.ts';
import { recordAnswer } from '../guest/calls.ts';
import { unwrapKey } from '../guest/keys.ts';
import { replyMatchesOrder } from '../guest/orders.ts';
import {
  type GuestReport,
  GuestReport as GuestReportSchema,
  openEnvelope,
  verifySignature,
} from '../guest/protocol.ts';
import type { InstanceItem } from '../instances/model.ts';
import { findInstance, updateInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { engineFault } from './faults.ts';
import { deliverAnswer, forgetWaitingTask, keepAnswer, keepWaitingTasksAlive } from './tasks.ts';

// Trove's conductor: the only writer of guest-reported state. A report is applied only when it
// is signed with its instance's own key and newer than the last one of its kind.

export type Outcome = 'applied' | 'stale' | 'rejected' | 'unknown-instance';

// Trove keeps an LRU of 10 keys; a bounded map of unwrapped keys spares a decryption per report.
const keys = new Map<string, Buffer>();
async function keyOf(item: InstanceItem): Promise<Buffer> {
  const cached = keys.get(item.id);
  if (cached) return cached;
  const key = await unwrapKey(item.wrapped_key);
  if (keys.size >= 1000) keys.delete(keys.keys().next().value as string);
  keys.set(item.id, key);
  return key;
}

export async function ingest(body: string): Promise<Outcome> {
  const envelope = openEnvelope(body);
  if (!envelope) return reject('not a signed envelope');
  const item = await findInstance(envelope.instance_id);
  if (!item) return 'unknown-instance';
  if (!verifySignature(await keyOf(item), envelope)) return reject(`bad signature for instance ${item.id}`);
  let report: GuestReport;
  try {
    report = GuestReportSchema.parse(JSON.parse(envelope.body));
  } catch {
    return reject(`malformed report from instance ${item.id}`);
  }
  if (report.instance_id !== item.id)
    return reject(`report names instance ${report.instance_id}, signed for ${item.id}`);
  return report.method === 'heartbeat' ? heartbeat(item, report) : operationResult(item, report);
}

function reject(why: string): Outcome {
  logger.warn('guest message rejected', { reason: why });
  return 'rejected';
}

async function heartbeat(
  item: InstanceItem,
  report: Extract<GuestReport, { method: 'heartbeat' }>,
): Promise<Outcome> {
  const set: Record<string, unknown> = {
    service_status: report.payload.service_status,
    service_status_updated: troveTime(),
    last_seen_heartbeat: report.sent,
  };
  if (report.payload.volume) {
    set.volume_used_bytes = report.payload.volume.used_bytes;
    set.volume_total_bytes = report.payload.volume.total_bytes;
  }
  // Out-of-order reports are dropped (Trove's LastSeen), and a pending RESTART_REQUIRED is
  // cleared only by a restart, never by a heartbeat.
  const applied = await updateInstance(item.project_id, item.id, {
    set,
    condition: {
      expression:
        '(attribute_not_exists(last_seen_heartbeat) OR last_seen_heartbeat < :sent) AND service_status <> :rr',
      values: { ':sent': report.sent, ':rr': 'restart required' },
    },
  });
  // The guest is alive, whatever the order of its reports: the steps waiting on it keep waiting.
  await keepWaitingTasksAlive(item.project_id, item.id, item.waiting_tasks);
  if (applied) await engineFault(item, report.payload.service_status);
  return applied ? 'applied' : 'stale';
}

async function operationResult(
  item: InstanceItem,
  report: Extract<GuestReport, { method: 'operation_result' }>,
): Promise<Outcome> {
  const { reply_token: replyToken, ok, result, error, operation, operation_id } = report.payload;
  const answer = { ok, result, error };
  if (!(await replyMatchesOrder(item.id, operation_id, replyToken)))
    return reject(`reply of instance ${item.id} does not match the order ${operation_id} was sent with`);
  // A handler is waiting for this answer (a synchronous call): record it where it looks.
  if (!replyToken) {
    await recordAnswer(operation_id, item.id, answer);
    return 'applied';
  }
  // A workflow step waits: the newest token registered for the operation (a retried step has a
  // new one), else the one the order carried.
  const waiting = item.waiting_tasks?.[operation_id];
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
