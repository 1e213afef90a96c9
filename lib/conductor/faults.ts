import { troveTime } from '../dynamo.ts';
import type { InstanceItem } from '../instances/model.ts';
import { updateInstance } from '../instances/repository.ts';

// Faults built from what the control plane last heard from a guest: a step that gave up waiting
// says when the guest was last heard and in what state, and an engine that died under a running
// agent is a fault on the instance, not only a SHUTDOWN.

export interface StepError {
  Error?: string;
  Cause?: string;
}

export type Fault = { message: string; created: string; details?: string };

/** The details of a fault the conductor set for a dead engine; it clears only its own. */
const ENGINE_DIED = 'Guest.EngineCrashed';

/** States.HeartbeatTimeout: the guest went silent; States.Timeout: the step's whole time ran out. */
export function isWaitTimeout(error: StepError): boolean {
  return error.Error === 'States.HeartbeatTimeout' || error.Error === 'States.Timeout';
}

/** "no heartbeat since <time>; last status <x>", from the instance item. */
export function lastSeen(item: InstanceItem): string {
  const since = item.last_seen_heartbeat
    ? troveTime(new Date(item.last_seen_heartbeat * 1000))
    : `${item.created} (instance created; never heard from)`;
  return `no heartbeat since ${since}; last status ${item.service_status}`;
}

/** The fault of a step that waited for the guest in vain. */
export function silenceFault(item: InstanceItem, error: StepError, operation: string): Fault {
  const heard = Boolean(item.last_seen_heartbeat);
  const message =
    error.Error === 'States.HeartbeatTimeout'
      ? heard
        ? `The guest agent went silent during ${operation}: ${lastSeen(item)}.`
        : `The guest agent did not start within its boot timeout: ${lastSeen(item)}.`
      : `The guest agent did not finish ${operation} in time: ${lastSeen(item)}.`;
  return { message, created: troveTime(), details: [error.Error, error.Cause].filter(Boolean).join(': ') };
}

/**
 * A heartbeat saying the engine crashed (its process gone though nobody stopped it) puts a
 * fault on the instance; the first heartbeat that finds it running again takes that fault away.
 * The two run after their heartbeat's write, and one batch may carry both ("crashed", then
 * "healthy" once the engine is back): the fault goes on only while the stored status is still
 * "crashed", so a later heartbeat's write that came first is never followed by a stale fault.
 */
export async function engineFault(item: InstanceItem, serviceStatus: string): Promise<void> {
  if (serviceStatus === 'crashed' && !item.fault) {
    const was = item.service_status === 'crashed' ? 'crashed' : item.service_status;
    await updateInstance(item.project_id, item.id, {
      set: {
        fault: {
          message: `The database engine stopped without being asked to (last status before: ${was}, at ${item.service_status_updated}); restart the instance to start it again.`,
          created: troveTime(),
          details: ENGINE_DIED,
        },
      },
      condition: {
        expression: 'attribute_not_exists(fault) AND service_status = :crashed',
        values: { ':crashed': 'crashed' },
      },
    });
  } else if (['healthy', 'running'].includes(serviceStatus) && item.fault?.details === ENGINE_DIED) {
    await updateInstance(item.project_id, item.id, {
      remove: ['fault'],
      condition: { expression: 'fault.details = :died', values: { ':died': ENGINE_DIED } },
    });
  }
}
