import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import { BadRequest, NotFound } from '../errors.ts';
import { callGuest } from '../guest/calls.ts';
import { type Page, type PageOf, pageByKey } from '../paging.ts';
import type { InstanceItem } from './model.ts';
import { resetStatus, restartInstance } from './operations.ts';
import { findInstance } from './repository.ts';
import { deriveStatus, SERVICE_STATUSES } from './status.ts';
import { instanceDetail, type ViewContext } from './views.ts';

// Trove's management view of instances (trove/extensions/mgmt/instances): every project's
// instances for an admin, with what only an operator needs (the server, the service status,
// the task's description) and the actions an operator takes.

/** Trove's InstanceTasks descriptions (trove/instance/tasks.py). */
const TASK_DESCRIPTIONS: Record<string, string> = {
  NONE: 'No tasks for the instance.',
  DELETING: 'Deleting the instance.',
  REBOOTING: 'Rebooting the instance.',
  // Trove's rebuild sets BUILDING: its description is the one an operator sees there.
  REBUILDING: 'The instance is building.',
  RESIZING: 'Resizing the instance.',
  UPGRADING: 'Upgrading the instance.',
  BUILDING: 'The instance is building.',
  RESTART_REQUIRED: 'Instance requires a restart to apply its configuration.',
  BUILDING_ERROR_SERVER: 'Build error: Server.',
  BUILDING_ERROR_VOLUME: 'Build error: Volume.',
  BUILDING_ERROR_TIMEOUT_GA: 'Build error: guestagent timeout.',
};

export interface MgmtFilter {
  deleted?: string;
  project_id?: string;
}

/**
 * `GET /mgmt/instances`: every project's instances (or one project's), by id. Deleted instances
 * leave no record here, so `deleted=true` lists none. Without a project it reads the whole
 * table: an operator's question, asked rarely, for which no index is kept.
 */
export async function listMgmtInstances(filter: MgmtFilter, page: Page): Promise<PageOf<InstanceItem>> {
  if (filter.deleted?.toLowerCase() === 'true') return { items: [] };
  const items: InstanceItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(
      filter.project_id
        ? new QueryCommand({
            TableName: config.instancesTable,
            KeyConditionExpression: 'project_id = :p',
            ExpressionAttributeValues: { ':p': filter.project_id },
            ExclusiveStartKey: start,
          })
        : new ScanCommand({ TableName: config.instancesTable, ExclusiveStartKey: start }),
    );
    items.push(...((out.Items ?? []) as InstanceItem[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return pageByKey(items, (i) => i.id, page);
}

/** Any project's instance, by id (404 as Trove's when there is none). */
export async function loadAnyInstance(id: string): Promise<InstanceItem> {
  const item = await findInstance(id);
  if (!item) throw new NotFound(`Resource ${id} cannot be found.`);
  return item;
}

/** Trove's MgmtInstanceView: the detail view, the server, and the operator's fields. */
export function mgmtInstanceView(item: InstanceItem, ctx: ViewContext) {
  const derived = deriveStatus(item, ctx.now ?? new Date(), config.heartbeatExpirySeconds);
  return {
    ...instanceDetail(item, { ...ctx, isAdmin: true }),
    server: item.server_id
      ? {
          id: item.server_id,
          name: item.name,
          status: item.server_status,
          tenant_id: item.project_id,
          host: config.stage,
        }
      : null,
    service_status: SERVICE_STATUSES[derived.service_status] ?? null,
    tenant_id: item.project_id,
    deleted: false,
    deleted_at: null,
    task_description: TASK_DESCRIPTIONS[item.task_status] ?? item.task_status,
  };
}

/** Trove's MgmtInstanceDetailView: also the addresses, root history, volume and guest status. */
export function mgmtInstanceDetail(item: InstanceItem, ctx: ViewContext) {
  const view = mgmtInstanceView(item, ctx);
  const derived = deriveStatus(item, ctx.now ?? new Date(), config.heartbeatExpirySeconds);
  const usedGb = item.volume_used_bytes === undefined ? null : item.volume_used_bytes / 1024 ** 3;
  return {
    ...view,
    server: view.server ? { ...view.server, addresses: item.addresses ?? [] } : null,
    ...(item.root_enabled_at
      ? { root_enabled: troveTime(new Date(item.root_enabled_at)), root_enabled_by: item.root_enabled_by }
      : {}),
    volume: {
      ...view.volume,
      size: item.volume_size,
      used: usedGb === null ? null : Math.round(usedGb * 100) / 100,
      total: item.volume_size,
    },
    guest_status: { state_description: derived.service_status },
  };
}

/** Trove's RootHistoryView: when root was enabled and by whom, or 'Never' and 'Nobody'. */
export function rootHistoryView(item: InstanceItem) {
  return {
    root_history: {
      id: item.id,
      enabled: item.root_enabled_at ? troveTime(new Date(item.root_enabled_at)) : 'Never',
      user: item.root_enabled_by ?? 'Nobody',
    },
  };
}

/**
 * `POST /mgmt/instances/{id}/action`, one action per body as Trove: `stop` stops the database
 * (a guest call, as Trove's stop_db), `reboot` reboots its server (Trove: stop_db, Nova reboot,
 * guest restart, wait healthy; the restart workflow with `reboot_server`), `reset-task-status`
 * clears a stuck task, `rebuild` puts a new image on its server with the data volume kept
 * (Trove: stop_db, unmount, Nova rebuild, the guest back on the kept data; the restart workflow
 * with `rebuild_server`).
 * `migrate` moves a server to another compute host; a deployment has one (the local host, or
 * EC2, which places instances itself), so it is refused as Trove refuses what it cannot do.
 */
export async function mgmtInstanceAction(id: string, body: Record<string, unknown>): Promise<void> {
  const keys = Object.keys(body);
  if (keys.length === 0) throw new BadRequest('Invalid request body.');
  const known = ['stop', 'reboot', 'migrate', 'reset-task-status', 'rebuild'];
  for (const key of keys) if (!known.includes(key)) throw new BadRequest(`Invalid instance action: ${key}`);
  if (keys.length > 1) throw new BadRequest('Only one action can be specified per request.');
  const item = await loadAnyInstance(id);
  switch (keys[0]) {
    case 'stop':
      await callGuest(
        item,
        'stop_db',
        { do_not_start_on_reboot: true },
        { timeoutSeconds: config.callLowTimeoutSeconds },
      );
      return;
    case 'reboot':
      return restartInstance(item.project_id, item.id, { rebootServer: true });
    case 'reset-task-status':
      return resetStatus(item.project_id, item.id, true);
    case 'rebuild':
      return restartInstance(item.project_id, item.id, {
        rebuildImageId: (body.rebuild as { image_id: string }).image_id,
      });
    default: // migrate, the one left
      throw new BadRequest('No other compute host to migrate the instance to.');
  }
}
