import { troveTime } from '../dynamo.ts';
import { logger } from '../logger.ts';
import { startWorkflow } from '../workflows.ts';
import type { InstanceItem } from './model.ts';
import { updateInstance } from './repository.ts';

/**
 * Starts the build of an instance already written with its quota. If the workflow cannot start,
 * the instance says so truthfully (Trove's BUILDING_ERROR_SERVER, or _REPLICA for a replica) with
 * a fault, rather than staying BUILD with nothing behind it.
 */
export async function startBuild(item: InstanceItem, extra: { replica_of?: string } = {}): Promise<void> {
  try {
    await startWorkflow('instance-create', item.id, {
      project_id: item.project_id,
      instance_id: item.id,
      ...extra,
    });
  } catch (err) {
    logger.error('create workflow did not start', { instance_id: item.id, error: err as Error });
    const task_status = extra.replica_of ? 'BUILDING_ERROR_REPLICA' : 'BUILDING_ERROR_SERVER';
    const fault = {
      message: 'The create workflow could not be started.',
      created: troveTime(),
      details: String(err),
    };
    await updateInstance(item.project_id, item.id, { set: { task_status, fault } });
    item.task_status = task_status;
    item.fault = fault;
  }
}
