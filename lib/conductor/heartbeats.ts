import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import type { GuestReport } from '../guest/protocol.ts';
import type { InstanceItem } from '../instances/model.ts';
import type { Guest } from './guests.ts';

// One heartbeat, one table write. The write carries every check the conductor used to read for:
// the instance exists, its stored key is the one the message was verified with (no cached key
// outlives a rotation), the report is newer than the last one applied (Trove's LastSeen), and a
// pending RESTART_REQUIRED stays. Its answer carries the item as it was, before the write or when
// a condition refused it, so nothing needs reading around it: the waiting steps to keep alive,
// the fault to set or clear, the key after a rotation, the status actually stored.

export type Heartbeat = Extract<GuestReport, { method: 'heartbeat' }>;

export type HeartbeatWrite =
  /** Written; `before` is the item as it was. */
  | { applied: true; before: InstanceItem }
  /** A condition refused it; `stored` is the item as it is, undefined when there is none. */
  | { applied: false; stored?: InstanceItem };

/**
 * The write of a heartbeat, as sent. `timeOnly`: the report says what `guest.known` says is
 * stored, so only its time is written, on condition that the stored status (and volume) are
 * indeed those. Its own function so that the heartbeat bench measures the table's rate for this
 * very write (`npm run bench -- heartbeat`), on a table of its own.
 */
export function heartbeatUpdate(
  guest: Pick<Guest, 'projectId' | 'instanceId' | 'wrappedKey'>,
  report: Heartbeat,
  timeOnly: boolean,
  table: string = config.instancesTable,
): UpdateCommandInput {
  const { service_status: status, volume, replication } = report.payload;
  let remove = '';
  const values: Record<string, unknown> = {
    ':wk': guest.wrappedKey,
    ':sent': report.sent,
    ':rr': 'restart required',
  };
  const conditions = [
    'attribute_exists(id)',
    'wrapped_key = :wk',
    '(attribute_not_exists(last_seen_heartbeat) OR last_seen_heartbeat < :sent)',
    'service_status <> :rr',
  ];
  let set: string[];
  if (timeOnly) {
    set = ['last_seen_heartbeat = :sent'];
    if (status === 'healthy') set.push('healthy_heartbeat = :sent');
    conditions.push('service_status = :status');
    values[':status'] = status;
    if (volume) {
      conditions.push('volume_used_bytes = :used', 'volume_total_bytes = :total');
      values[':used'] = volume.used_bytes;
      values[':total'] = volume.total_bytes;
    }
  } else {
    const now = troveTime();
    set = [
      'service_status = :status',
      'service_status_updated = :now',
      'last_seen_heartbeat = :sent',
      '#updated = :now',
    ];
    // When the engine last answered: the clock a failover's expiry is measured on
    // (lib/replication/failover.ts); an agent that runs beside a dead or frozen engine keeps
    // heartbeating, but not this.
    if (status === 'healthy') set.push('healthy_heartbeat = :sent');
    Object.assign(values, { ':status': status, ':now': now });
    if (volume) {
      set.push('volume_used_bytes = :used', 'volume_total_bytes = :total');
      values[':used'] = volume.used_bytes;
      values[':total'] = volume.total_bytes;
    }
    // A healthy engine that reports no replication is in no replica set (any more).
    if (replication) {
      set.push('replication = :repl');
      values[':repl'] = replication;
    } else if (status === 'healthy') remove = ' REMOVE replication';
  }
  return {
    TableName: table,
    Key: { project_id: guest.projectId, id: guest.instanceId },
    UpdateExpression: `SET ${set.join(', ')}${remove}`,
    ConditionExpression: conditions.join(' AND '),
    ...(timeOnly ? {} : { ExpressionAttributeNames: { '#updated': 'updated' } }),
    ExpressionAttributeValues: values,
    ReturnValues: 'ALL_OLD',
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  };
}

/** Writes a heartbeat (heartbeatUpdate): what was stored before, or why it was refused. */
export async function writeHeartbeat(
  guest: Guest,
  report: Heartbeat,
  timeOnly: boolean,
): Promise<HeartbeatWrite> {
  try {
    const out = await documents.send(new UpdateCommand(heartbeatUpdate(guest, report, timeOnly)));
    return { applied: true, before: out.Attributes as InstanceItem };
  } catch (err) {
    if (
      !(
        err instanceof ConditionalCheckFailedException ||
        (err as Error).name === 'ConditionalCheckFailedException'
      )
    )
      throw err;
    // The document client leaves this item in DynamoDB's own attribute-value form.
    const item = (err as ConditionalCheckFailedException).Item;
    return { applied: false, stored: item ? (unmarshall(item) as InstanceItem) : undefined };
  }
}

/** Whether a refused write was refused for being stale (or for a pending RESTART_REQUIRED). */
export function isStale(stored: InstanceItem, report: Heartbeat): boolean {
  return (
    (stored.last_seen_heartbeat !== undefined && stored.last_seen_heartbeat >= report.sent) ||
    stored.service_status === 'restart required'
  );
}

/** Whether the report changes nothing the conductor knows is stored but the time it was sent. */
export function changesOnlyTime(guest: Guest, report: Heartbeat): boolean {
  const known = guest.known;
  // Replication's figures (position, lag) change with every heartbeat: always written.
  if (report.payload.replication) return false;
  if (!known || known.service_status !== report.payload.service_status) return false;
  const volume = report.payload.volume;
  return (
    !volume ||
    (known.volume_used_bytes === volume.used_bytes && known.volume_total_bytes === volume.total_bytes)
  );
}
