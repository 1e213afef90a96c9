import { config } from '../config.ts';
import { loadReadyInstance } from '../databases/instance.ts';
import { BadRequest } from '../errors.ts';
import { callGuest } from '../guest/calls.ts';
import type { Caller } from '../http/auth.ts';
import type { InstanceItem } from '../instances/model.ts';
import { logRoot } from './layout.ts';
import { removeSuperseded, type Superseded, uploadGrant } from './objects.ts';
import type { LogActionRequest, LogView } from './schemas.ts';

// Trove's guest_log_list and guest_log_action: calls to the instance's guest, which reads its
// engine's logs and publishes them into the deployment's bucket under `database_logs/<project_id>/`
// (the Swift container of that project, lib/logs/swift.ts), through an upload grant that admits
// its own instance's prefix only (lib/logs/objects.ts).

/**
 * Trove's guest_log_exposed_logs per datastore: the logs a non-admin sees and may act on (an
 * admin sees all). MySQL's and PostgreSQL's are Trove's defaults; Redis exposes its slow log.
 */
const EXPOSED: Record<string, string[]> = {
  mysql: ['general', 'slow_query'],
  mariadb: ['general', 'slow_query'],
  postgresql: ['general'],
  redis: ['slow_query'],
};

function order(item: InstanceItem, caller: Caller) {
  return {
    root: logRoot(item.project_id),
    limit_bytes: config.guestLogLimit,
    chunk_bytes: config.guestLogChunkSize,
    expiry_seconds: config.guestLogExpirySeconds,
    exposed: caller.isAdmin ? null : (EXPOSED[item.datastore.manager] ?? []),
  };
}

/** The largest object a publish sends: a chunk (never above the publish limit), or a metafile. */
function objectLimit(): number {
  return Math.max(Math.min(config.guestLogChunkSize, config.guestLogLimit), 4096);
}

function load(caller: Caller, instanceId: string): Promise<InstanceItem> {
  return loadReadyInstance(caller.projectId, instanceId, { redis: 'root' });
}

export async function listLogs(caller: Caller, instanceId: string): Promise<LogView[]> {
  const item = await load(caller, instanceId);
  return (await callGuest(item, 'guest_log_list', order(item, caller), {
    timeoutSeconds: config.callHighTimeoutSeconds,
  })) as LogView[];
}

export async function logAction(
  caller: Caller,
  instanceId: string,
  request: LogActionRequest,
): Promise<LogView> {
  // Trove's API refuses this before it asks the guest.
  if (request.enable && request.disable) throw new BadRequest('Cannot enable and disable log.');
  const item = await load(caller, instanceId);
  const seconds = config.callHighTimeoutSeconds;
  const { superseded, ...view } = (await callGuest(
    item,
    'guest_log_action',
    {
      ...order(item, caller),
      name: request.name,
      enable: Boolean(request.enable),
      disable: Boolean(request.disable),
      publish: Boolean(request.publish),
      discard: Boolean(request.discard),
      // Only a call that may publish can upload, and only for as long as it may run.
      ...(request.publish
        ? { upload: await uploadGrant(item.project_id, item.id, objectLimit(), seconds + 60) }
        : {}),
    },
    { timeoutSeconds: seconds },
  )) as LogView & { superseded?: Superseded };
  if (superseded) {
    await removeSuperseded(item.project_id, item.id, item.datastore.manager, request.name, superseded);
  }
  return view;
}
