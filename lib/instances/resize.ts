import { flavorIdOf } from '../catalog/match.ts';
import { loadFlavor } from '../catalog/store.ts';
import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, NotFound, OverLimit, UnprocessableEntity } from '../errors.ts';
import { quotaChanges, quotaExceededMessage } from '../quotas.ts';
import { startWorkflow } from '../workflows.ts';
import type { InstanceItem, ResizeRecord } from './model.ts';
import { assertCanAct, loadInstance } from './operations.ts';
import { transact, updateItem } from './repository.ts';
import type { ResizeRequest } from './schemas.ts';

// Trove's resize actions (TROVE_API.md §2.5, §9.3, §9.4): the checks, then the instance is
// marked RESIZING together with the quota it will hold, in one transaction, and the resize
// workflow started. The workflow ends the task whatever happens (resize-steps.ts).

export async function resizeInstance(projectId: string, id: string, resize: ResizeRequest): Promise<void> {
  const item = await loadInstance(projectId, id);
  if (resize.flavorRef !== undefined && resize.volume !== undefined)
    throw new BadRequest('Not allowed to resize volume and flavor at the same time.');
  if (resize.volume !== undefined) return resizeVolume(item, Number(resize.volume.size));
  if (resize.flavorRef !== undefined) return resizeFlavor(item, resize.flavorRef);
  throw new BadRequest('Missing resize arguments.');
}

/** Trove's resize_flavor: a new flavor for the server, the engine restarted with its memory. */
async function resizeFlavor(item: InstanceItem, flavorRef: string | number): Promise<void> {
  assertCanAct(item);
  const flavorId = flavorIdOf(flavorRef) ?? '';
  const flavor = await loadFlavor(flavorId);
  if (!flavor) throw new NotFound(`Resource ${flavorId} cannot be found.`);
  if (flavor.id === item.flavor_id)
    throw new BadRequest('No change was requested in the size of the instance.');
  const from = { id: item.flavor_id, ram: item.flavor_ram, vcpus: item.flavor_vcpus ?? 1 };
  const to = { id: flavor.id, ram: flavor.ram, vcpus: flavor.vcpus };
  // More RAM is held from now on (and given back if the resize fails); less is given back only
  // once the smaller flavor is in place, so a revert never needs quota it gave away.
  const reserved = Math.max(0, to.ram - from.ram);
  await claim(
    item,
    { kind: 'flavor', old_flavor: from, new_flavor: to, ram_reserved: reserved },
    { ram: reserved },
  );
}

/** Trove's resize_volume, online: the volume and its filesystem grow while the engine serves. */
async function resizeVolume(item: InstanceItem, size: number): Promise<void> {
  if (size <= item.volume_size)
    throw new BadRequest(
      `The new volume 'size' must be larger than the current volume size of '${item.volume_size}'.`,
    );
  if (size > config.maxAcceptedVolumeSize)
    throw new OverLimit(
      `Volume 'size' cannot exceed maximum of ${config.maxAcceptedVolumeSize} GB, ${size} cannot be accepted.`,
    );
  assertCanAct(item);
  const reserved = size - item.volume_size;
  await claim(
    item,
    { kind: 'volume', old_size: item.volume_size, new_size: size, volumes_reserved: reserved },
    { volumes: reserved },
  );
}

async function claim(
  item: InstanceItem,
  resize: Omit<ResizeRecord, 'execution' | 'previous_task' | 'started'>,
  deltas: { ram?: number; volumes?: number },
): Promise<void> {
  const quota = await quotaChanges(item.project_id, deltas);
  if (quota.exceeded.length) throw new OverLimit(quotaExceededMessage(quota.exceeded));
  // Execution names are at most 80 characters: the instance id and the time keep them unique.
  const execution = `resize-${item.id}-${Date.now()}`;
  const record: ResizeRecord = {
    ...resize,
    execution,
    previous_task: item.task_status,
    started: troveTime(),
  };
  const claimed = await transact([
    updateItem(item.project_id, item.id, {
      set: { task_status: 'RESIZING', resize: record },
      remove: ['fault'],
      condition: {
        expression: 'task_status IN (:none, :rr)',
        values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED' },
      },
    }),
    ...quota.items,
  ]);
  // Another request took the instance (or the last of the quota) meanwhile.
  if (!claimed)
    throw new UnprocessableEntity(
      `Instance ${item.id} is not currently available for an action to be performed.`,
    );
  const workflow = resize.kind === 'flavor' ? 'instance-resize-flavor' : 'instance-resize-volume';
  const input = {
    project_id: item.project_id,
    instance_id: item.id,
    execution: execution,
    ...(resize.kind === 'flavor'
      ? { old_flavor: resize.old_flavor, new_flavor: resize.new_flavor }
      : { new_size: resize.new_size }),
  };
  try {
    await startWorkflow(workflow, execution, input);
  } catch (err) {
    // Nothing will ever end this task: undo it, quota included, and let the caller see why.
    const back = await quotaChanges(item.project_id, {
      ram: -(deltas.ram ?? 0),
      volumes: -(deltas.volumes ?? 0),
    });
    await transact([
      updateItem(item.project_id, item.id, {
        set: { task_status: item.task_status },
        remove: ['resize'],
        condition: { expression: 'resize.execution = :e', values: { ':e': execution } },
      }),
      ...back.items,
    ]);
    throw err;
  }
}
