// Trove's status model (TROVE_API.md §3): the API `status` and `operating_status` are derived
// from three inputs, never stored: the task status (set by the API and the workflows), the
// service status (reported by the guest through the conductor) and the server status (compute).

export const TASK_STATUSES = {
  NONE: { action: 'NONE', error: false },
  BUILDING: { action: 'BUILDING', error: false },
  REBOOTING: { action: 'REBOOTING', error: false },
  // An admin's rebuild: Trove has no task of its own for it (its MgmtInstance.rebuild sets
  // BUILDING, and the API shows BUILD); a name of its own here tells the rebuild's steps from a
  // create's (which delete, markReady and assertCanAct treat apart), shown as Trove shows it.
  REBUILDING: { action: 'BUILDING', error: false },
  DELETING: { action: 'DELETING', error: false },
  RESIZING: { action: 'RESIZING', error: false },
  UPGRADING: { action: 'UPGRADING', error: false },
  RESTART_REQUIRED: { action: 'RESTART_REQUIRED', error: false },
  BUILDING_ERROR_SERVER: { action: 'BUILDING', error: true },
  BUILDING_ERROR_VOLUME: { action: 'BUILDING', error: true },
  BUILDING_ERROR_TIMEOUT_GA: { action: 'ERROR', error: true },
  BUILDING_ERROR_REPLICA: { action: 'BUILDING', error: true },
  // A member re-seeded from its source's snapshot (lib/replication/reseed.ts): shown as Trove
  // shows a replica seeded at create (BUILD); a failed one ends in BUILDING_ERROR_REPLICA.
  RESEEDING: { action: 'BUILDING', error: false },
  PROMOTING: { action: 'PROMOTING', error: false },
  EJECTING: { action: 'EJECTING', error: false },
  DETACHING: { action: 'DETACHING', error: false },
  PROMOTION_ERROR: { action: 'PROMOTING', error: true },
  EJECTION_ERROR: { action: 'EJECTING', error: true },
  // Trove's cluster member tasks after a failed grow or shrink (0x57, 0x58): the members it was
  // about show ERROR, with the step's fault (lib/clusters/resize-steps.ts).
  GROWING_ERROR: { action: 'GROWING', error: true },
  SHRINKING_ERROR: { action: 'SHRINKING', error: true },
} as const;
export type TaskStatus = keyof typeof TASK_STATUSES;

/** Service-status descriptions (as guests send them) and what the API shows for each. */
export const SERVICE_STATUSES: Record<string, string> = {
  running: 'ACTIVE',
  blocked: 'BLOCKED',
  paused: 'SHUTDOWN',
  shutdown: 'SHUTDOWN',
  deleted: 'DELETED',
  crashed: 'SHUTDOWN',
  'failed to spawn': 'FAILED',
  building: 'BUILD',
  unknown: 'ERROR',
  new: 'NEW',
  'guestagent error': 'ERROR',
  'instance ready': 'BUILD',
  'restart required': 'RESTART_REQUIRED',
  healthy: 'HEALTHY',
  restarting: 'RESTARTING',
  // Reported (not stored) when the heartbeat is older than agent_heartbeat_expiry.
  'guestagent timeout': 'ERROR',
};

export type ServerStatus = 'BUILD' | 'ACTIVE' | 'SHUTDOWN' | 'ERROR' | 'DELETED' | 'REBOOT' | 'RESIZE';

export interface StatusInputs {
  task_status: string;
  service_status: string;
  /** ISO time the service status was last written (or of the instance's creation before the first). */
  service_status_updated: string;
  /**
   * The `sent` of the newest heartbeat applied: a heartbeat that changes nothing writes only this
   * (lib/conductor/heartbeats.ts), so the guest was last heard at the later of the two.
   */
  last_seen_heartbeat?: number;
  server_status: string;
  /** True while a backup of the instance is NEW, BUILDING or SAVING. */
  backup_running?: boolean;
  /** The backup running now (instance items carry this rather than the flag). */
  running_backup_id?: string;
  /** What the guest last reported of replication: an error there is the instance's (issue 12 #3). */
  replication?: { error?: string };
}

export interface DerivedStatus {
  status: string;
  operating_status: string;
  /** The service status as reported, after heartbeat expiry is applied. */
  service_status: string;
}

/** When the guest was last heard, as Trove's service_status_updated (ISO, UTC, no fraction). */
export function lastHeard(i: Pick<StatusInputs, 'service_status_updated' | 'last_seen_heartbeat'>): string {
  const written = i.service_status_updated;
  if (i.last_seen_heartbeat === undefined) return written;
  const seen = new Date(i.last_seen_heartbeat * 1000).toISOString().slice(0, 19);
  // Both are ISO times of the same shape: they compare as strings.
  return seen > written ? seen : written;
}

/** Trove's SimpleInstance.status and operating_status, with heartbeat expiry applied on read. */
export function deriveStatus(i: StatusInputs, now: Date, heartbeatExpirySeconds: number): DerivedStatus {
  const task = TASK_STATUSES[i.task_status as TaskStatus] ?? { action: i.task_status, error: false };
  const server = task.action === 'BUILDING' && i.server_status !== 'ERROR' ? 'BUILD' : i.server_status;

  let service = i.service_status;
  const age = (now.getTime() - Date.parse(`${lastHeard(i)}Z`)) / 1000;
  if (task.action === 'NONE' && service !== 'restart required' && age >= heartbeatExpirySeconds) {
    service = 'guestagent timeout';
  }

  const status = apiStatus(task, server, backupRunning(i));
  // A replica whose replication stopped or broke serves stale data: ERROR, with the engine's
  // message as the fault (views.ts), as much as a dead engine would be.
  const broken = Boolean(i.replication?.error) && service === 'healthy';
  const operating_status =
    task.action === 'NONE' && server === 'ACTIVE'
      ? broken
        ? 'ERROR'
        : (SERVICE_STATUSES[service] ?? 'ERROR')
      : '';
  return { status, operating_status, service_status: service };
}

function apiStatus(task: { action: string; error: boolean }, server: string, backupRunning: boolean): string {
  if (task.error) return 'ERROR';
  switch (task.action) {
    case 'BUILDING':
      return server === 'ERROR' ? 'ERROR' : 'BUILD';
    case 'REBOOTING':
      return 'REBOOT';
    case 'RESIZING':
      return 'RESIZE';
    case 'UPGRADING':
      return 'UPGRADE';
    case 'RESTART_REQUIRED':
      return 'RESTART_REQUIRED';
    case 'PROMOTING':
      return 'PROMOTE';
    case 'EJECTING':
      return 'EJECT';
    case 'DETACHING':
      return 'DETACH';
    case 'DELETING':
      return ['ACTIVE', 'SHUTDOWN', 'DELETED'].includes(server) ? 'SHUTDOWN' : 'ERROR';
  }
  if (backupRunning) return 'BACKUP';
  if (['BUILD', 'ERROR', 'REBOOT', 'RESIZE', 'ACTIVE', 'SHUTDOWN'].includes(server)) return server;
  return 'UNKNOWN';
}

/** Trove's validate_can_perform_action: 422 unless the instance is settled and healthy enough. */
export function refusalToAct(
  i: StatusInputs,
  { anyGuest = false }: { anyGuest?: boolean } = {},
): string | undefined {
  if (!['ACTIVE', 'HEALTHY'].includes(i.server_status)) return `server status was ${i.server_status}`;
  // A rebuild is named as Trove names its task then (BUILDING).
  if (!['NONE', 'RESTART_REQUIRED'].includes(i.task_status))
    return `task status was ${i.task_status === 'REBUILDING' ? 'BUILDING' : i.task_status}`;
  const ok = ['running', 'shutdown', 'crashed', 'blocked', 'healthy', 'restart required'];
  if (!anyGuest && !ok.includes(i.service_status))
    return `service status was ${SERVICE_STATUSES[i.service_status] ?? i.service_status}`;
  if (backupRunning(i)) return 'a backup is running';
  return undefined;
}

function backupRunning(i: StatusInputs): boolean {
  return i.backup_running === true || Boolean(i.running_backup_id);
}
