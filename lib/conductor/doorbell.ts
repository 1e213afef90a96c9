import { openDoorbell } from '../guest/doorbell.ts';

export { DOORBELL_HEADER } from '../guest/doorbell-token.ts';

import { openEnvelope } from '../guest/signing.ts';
import { logger } from '../logger.ts';
import { guests as defaultGuests, type GuestCache } from './guests.ts';

// A guest opening its doorbell (lib/guest/doorbell.ts): the WebSocket API's $connect carries a
// token the guest sealed with its instance key, `{method: "doorbell", instance_id, sent}`. Only
// a guest holding the key can take its instance's doorbell, so no guest can take another's rings
// (which would hold that guest's orders until its next poll).

/** A token is taken this long after (or before, for a fast clock) the guest sealed it. */
const TOKEN_TOLERANCE_SECONDS = 120;

export type DoorbellOutcome = 'opened' | 'refused';

export async function connectDoorbell(
  token: string | undefined,
  connectionId: string,
  cache: GuestCache = defaultGuests,
  now = Date.now() / 1000,
): Promise<DoorbellOutcome> {
  const envelope = openEnvelope(token ?? '');
  if (!envelope) return refuse('no doorbell token');
  const guest = await cache.signer(envelope);
  if (guest === 'unknown') return refuse(`no instance ${envelope.instance_id}`);
  if (guest === 'forged') return refuse(`bad signature for instance ${envelope.instance_id}`);
  let body: unknown;
  try {
    body = JSON.parse(envelope.body);
  } catch {
    return refuse(`malformed token of instance ${guest.instanceId}`);
  }
  const { method, instance_id, sent } = (body ?? {}) as Record<string, unknown>;
  if (method !== 'doorbell' || instance_id !== guest.instanceId || typeof sent !== 'number')
    return refuse(`malformed token of instance ${guest.instanceId}`);
  if (Math.abs(now - sent) > TOKEN_TOLERANCE_SECONDS)
    return refuse(`stale token of instance ${guest.instanceId}`);
  if (!(await openDoorbell(guest.projectId, guest.instanceId, connectionId, sent)))
    return refuse(`an older token of instance ${guest.instanceId}`);
  return 'opened';
}

function refuse(why: string): DoorbellOutcome {
  logger.warn('doorbell refused', { reason: why });
  return 'refused';
}
