import { computeDriver } from '../compute/index.ts';
import { isWaitTimeout, silenceFault } from '../conductor/faults.ts';
import { troveTime } from '../dynamo.ts';
import { quotaChanges } from '../quotas.ts';
import type { InstanceItem, ResizeRecord } from './model.ts';
import { findInstance, transact, updateItem } from './repository.ts';
import { faultOf, InstanceGone, type StepInput } from './steps.ts';

// The steps of the resize workflows (statemachines/instance-resize-*.asl.yml). Each is
// idempotent: the compute driver's resize and extend look where the server is before acting,
// and the last step ends the task once, in one transaction with the quota it settles.

type StepError = { Error?: string; Cause?: string };

async function resizingInstance(input: StepInput): Promise<InstanceItem> {
  const item = await findInstance(input.instance_id);
  if (!item || item.project_id !== input.project_id)
    throw new InstanceGone(`instance ${input.instance_id} is gone`);
  if (!item.server_id) throw new Error(`instance ${input.instance_id} has no server`);
  return item;
}

/** Nova's resize: the server's memory and CPU become the flavor's (ResizePending: call again). */
export async function resizeServer(
  input: StepInput & { flavor: { id: string; ram: number; vcpus: number } },
) {
  const item = await resizingInstance(input);
  await (await computeDriver()).resize(item.server_id ?? '', input.flavor);
  return {};
}

/** Cinder's extend, online (ResizePending: call again); the guest grows its filesystem next. */
export async function extendVolume(input: StepInput & { size: number }) {
  const item = await resizingInstance(input);
  await (await computeDriver()).extendVolume(item.server_id ?? '', input.size);
  return {};
}

export interface EndResizeInput extends StepInput {
  /** The resize's execution name: a resize that is no longer this one's is left alone. */
  execution: string;
  /** Why the resize failed; absent when it succeeded. */
  error?: StepError;
  /** Why putting the old flavor back failed too. */
  revert_error?: StepError;
  /** The guest's filesystem figures after resize_fs. */
  grown?: { total_bytes?: number; used_bytes?: number };
}

/**
 * Trove's `finally`: the task ends whatever happened. Success records the new flavor or size (a
 * smaller flavor gives its RAM back now); failure keeps the old ones, gives back what the resize
 * held, and leaves a fault that says why. Only the resize this execution started is ended, once:
 * a retry, or a delete that came meanwhile, finds nothing to do.
 */
export async function endResize(input: EndResizeInput) {
  const item = await findInstance(input.instance_id);
  const resize = item?.resize;
  if (!item || item.project_id !== input.project_id || item.task_status !== 'RESIZING') return {};
  if (resize?.execution !== input.execution) return {};
  const set: Record<string, unknown> = {
    task_status: resize.kind === 'volume' ? resize.previous_task : 'NONE',
  };
  let deltas: { ram?: number; volumes?: number };
  if (!input.error) {
    if (resize.kind === 'flavor' && resize.new_flavor && resize.old_flavor) {
      set.flavor_id = resize.new_flavor.id;
      set.flavor_ram = resize.new_flavor.ram;
      set.flavor_vcpus = resize.new_flavor.vcpus;
      deltas = { ram: Math.min(0, resize.new_flavor.ram - resize.old_flavor.ram) };
    } else {
      set.volume_size = resize.new_size;
      if (input.grown?.total_bytes) set.volume_total_bytes = input.grown.total_bytes;
      if (input.grown?.used_bytes !== undefined) set.volume_used_bytes = input.grown.used_bytes;
      deltas = {};
    }
  } else {
    set.fault = resizeFault(item, resize, input.error, input.revert_error);
    deltas = { ram: -(resize.ram_reserved ?? 0), volumes: -(resize.volumes_reserved ?? 0) };
  }
  const quota = await quotaChanges(item.project_id, deltas);
  await transact([
    updateItem(item.project_id, item.id, {
      set,
      remove: input.error ? ['resize'] : ['resize', 'fault'],
      condition: {
        expression: 'task_status = :resizing AND resize.execution = :e',
        values: { ':resizing': 'RESIZING', ':e': input.execution },
      },
    }),
    ...quota.items,
  ]);
  return {};
}

function resizeFault(item: InstanceItem, resize: ResizeRecord, error: StepError, revertError?: StepError) {
  const what =
    resize.kind === 'flavor'
      ? `Resizing to flavor ${resize.new_flavor?.id} failed`
      : `Resizing the volume to ${resize.new_size} GB failed`;
  const why = isWaitTimeout(error) ? silenceFault(item, error, 'the resize') : faultOf(error);
  const kept =
    resize.kind === 'flavor'
      ? revertError
        ? `; putting flavor ${resize.old_flavor?.id} back failed too: ${faultOf(revertError).message}`
        : `; the instance runs on its old flavor ${resize.old_flavor?.id} again.`
      : `; the volume stays ${resize.old_size} GB.`;
  return {
    message: `${what}: ${why.message.replace(/\.$/, '')}${kept}`,
    created: troveTime(),
    details: [why.details, revertError && faultOf(revertError).details].filter(Boolean).join('\n'),
  };
}
