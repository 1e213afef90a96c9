import { randomUUID } from 'node:crypto';
import { getDatastoreVersion } from '../catalog/index.ts';
import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { callGuest, publicGuestMessage } from '../guest/calls.ts';
import type { Caller } from '../http/auth.ts';
import { getInstance } from '../instances/repository.ts';
import { startWorkflow } from '../workflows.ts';
import {
  type ModuleHolder,
  moduleHolders,
  recordApplications,
  recordReapplyFailure,
} from './applications.ts';
import type { InstanceModuleRecord } from './model.ts';
import { checkDatastore, guestModuleOrders } from './orders.ts';
import { findModuleAnywhere } from './repository.ts';
import type { GuestModuleView, ReapplyModuleRequest } from './schemas.ts';
import { loadModule } from './service.ts';

// Trove's module reapply (trove/module/service.py `reapply`, taskmanager/models.py
// ModuleTasks.reapply_module): the module's current contents go again, through the guest's
// module_apply, to the instances that have it, in batches with a pause between them. Trove casts
// it to the taskmanager; here it is the module-reapply workflow, one bounded step per instance,
// each of which ends with the instance's record updated or its failure recorded on it.

/** Trove's module_reapply_max_batch_size and module_reapply_min_batch_delay (seconds). */
export const MAX_BATCH_SIZE = 50;
export const MIN_BATCH_DELAY = 2;

/**
 * Trove's defaults and safeguards: no size (or 0) is the maximum, no delay (or 0) the minimum;
 * a non-admin cannot go above the one or below the other.
 */
export function batchLimits(
  isAdmin: boolean,
  batchSize: number | null | undefined,
  batchDelay: number | null | undefined,
): { batchSize: number; batchDelay: number } {
  let size = batchSize || MAX_BATCH_SIZE;
  let delay = batchDelay || MIN_BATCH_DELAY;
  if (!isAdmin) {
    size = Math.min(size, MAX_BATCH_SIZE);
    delay = Math.max(delay, MIN_BATCH_DELAY);
  }
  return { batchSize: size, batchDelay: delay };
}

export interface ReapplyCriteria {
  /** Only instances that have this md5 applied. */
  md5?: string | null;
  /** Even instances that have the module's current md5 already. */
  force?: boolean;
}

/**
 * Trove's test for one instance: it has an md5 other than the current one (or force), and the
 * one asked for when an md5 is given. Trove's clustered instances are left out unless
 * `include_clustered`; a cluster's members are built without modules here (lib/clusters), so
 * none holds one to reapply.
 */
export function wantsReapply(record: InstanceModuleRecord, currentMd5: string, c: ReapplyCriteria): boolean {
  return (record.md5 !== currentMd5 || Boolean(c.force)) && (!c.md5 || c.md5 === record.md5);
}

export interface ReapplyTarget {
  project_id: string;
  instance_id: string;
  /** The md5 the instance had when it was chosen. */
  from_md5: string;
}

/**
 * Trove pauses after each `batchSize` instances, but not after the last: the batches, each with
 * the pause that follows it.
 */
export function batchesOf(
  targets: ReapplyTarget[],
  batchSize: number,
  batchDelay: number,
): { targets: ReapplyTarget[]; delay: number }[] {
  const batches: { targets: ReapplyTarget[]; delay: number }[] = [];
  for (let i = 0; i < targets.length; i += batchSize) {
    const last = i + batchSize >= targets.length;
    batches.push({ targets: targets.slice(i, i + batchSize), delay: last ? 0 : batchDelay });
  }
  return batches;
}

export function reapplyTargets(
  holders: ModuleHolder[],
  currentMd5: string,
  c: ReapplyCriteria,
): ReapplyTarget[] {
  return holders
    .filter((h) => wantsReapply(h.record, currentMd5, c))
    .map((h) => ({ project_id: h.project_id, instance_id: h.id, from_md5: h.record.md5 }));
}

/** What one step of the workflow is given. */
export interface ReapplyStep extends ReapplyTarget {
  module_id: string;
  force: boolean;
}

/**
 * `PUT /modules/{id}/instances`: Trove loads the module as the caller may see it (404 otherwise)
 * and authorizes `module:reapply` (admin or owner: a project's own module, or one of all
 * tenants). Trove's taskmanager then loads each instance in the caller's context, which finds
 * another project's instance for an admin only; here a non-admin's reapply is its project's
 * instances alone. Answers once the workflow has started (Trove's 202 after its cast); with no
 * instance to reapply, nothing starts.
 */
export async function reapplyModule(caller: Caller, id: string, req: ReapplyModuleRequest): Promise<void> {
  const module = await loadModule(caller, id);
  const criteria = { md5: req.md5, force: Boolean(req.force) };
  const { batchSize, batchDelay } = batchLimits(caller.isAdmin, req.batch_size, req.batch_delay);
  const holders = await moduleHolders(module.id, caller.isAdmin ? undefined : caller.projectId);
  const targets = reapplyTargets(holders, module.md5, criteria);
  if (!targets.length) return;
  await startWorkflow('module-reapply', `${module.id}-${randomUUID()}`, {
    module_id: module.id,
    force: criteria.force,
    batches: batchesOf(targets, batchSize, batchDelay),
  });
}

export type ReapplyOutcome =
  | { instance_id: string; outcome: 'applied'; md5: string; status: string | null }
  | { instance_id: string; outcome: 'skipped'; reason: string }
  | { instance_id: string; outcome: 'failed'; message: string };

const skipped = (instance_id: string, reason: string): ReapplyOutcome => ({
  instance_id,
  outcome: 'skipped',
  reason,
});

/**
 * One instance (Trove's loop body): chosen again against what is true now (the instance, its
 * record and the module may have changed since the request), checked against its datastore
 * (Trove skips a module that does not fit), sent to the guest's module_apply with the contents
 * sealed as the apply route sends them, and recorded with the md5 applied. A guest that refuses
 * or does not answer leaves the instance's record at the md5 it has, with the failure on it.
 */
export async function reapplyOnInstance(step: ReapplyStep): Promise<ReapplyOutcome> {
  const item = await getInstance(step.project_id, step.instance_id);
  const record = item?.modules?.[step.module_id];
  if (!item || !record) return skipped(step.instance_id, 'the instance no longer has the module');
  const module = await findModuleAnywhere(step.module_id);
  if (!module) return skipped(step.instance_id, 'the module was deleted');
  if (record.md5 !== step.from_md5 || !wantsReapply(record, module.md5, { force: step.force })) {
    return skipped(step.instance_id, 'the instance was changed meanwhile');
  }
  const version = await getDatastoreVersion(item.datastore.version_id);
  try {
    checkDatastore([module], version?.datastore_id, item.datastore.version_id);
  } catch (err) {
    return skipped(step.instance_id, (err as Error).message);
  }
  let results: GuestModuleView[];
  try {
    results = (await callGuest(
      item,
      'module_apply',
      {},
      {
        timeoutSeconds: config.callHighTimeoutSeconds,
        secret: { modules: await guestModuleOrders([module]) },
      },
    )) as GuestModuleView[];
  } catch (err) {
    const message = (err as Error).message;
    await recordReapplyFailure(item, module.id, record.md5, { md5: module.md5, message, at: troveTime() });
    return { instance_id: item.id, outcome: 'failed', message };
  }
  await recordApplications(item, [module], troveTime());
  return {
    instance_id: item.id,
    outcome: 'applied',
    md5: module.md5,
    status: results.find((r) => r.id === module.id)?.status ?? null,
  };
}

/**
 * The workflow's Catch: the step itself failed (its function crashed or timed out, past its
 * retries). The instance's record says so, unless it changed meanwhile.
 */
export async function reapplyStepFailed(
  step: ReapplyStep & { error?: { Error?: string; Cause?: string } },
): Promise<ReapplyOutcome> {
  const module = await findModuleAnywhere(step.module_id);
  const cause = step.error?.Cause ?? step.error?.Error ?? 'unknown error';
  const message = publicGuestMessage(`The reapply did not complete: ${errorMessageOf(cause)}`);
  await recordReapplyFailure(
    { project_id: step.project_id, id: step.instance_id },
    step.module_id,
    step.from_md5,
    { md5: module?.md5 ?? step.from_md5, message, at: troveTime() },
  );
  return { instance_id: step.instance_id, outcome: 'failed', message };
}

/** A Lambda error's Cause is JSON with an errorMessage; anything else is shown as it is. */
function errorMessageOf(cause: string): string {
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // not JSON
  }
  return cause.slice(0, 500);
}

/**
 * The module status an instance shows (`GET /instances/{id}/modules`): the guest's own results,
 * except that a reapply that did not take shows on its module as ERROR with why, for as long as
 * the guest still has another md5 than the one that failed.
 */
export function withReapplyErrors(
  results: GuestModuleView[],
  records: Record<string, InstanceModuleRecord> | undefined,
): GuestModuleView[] {
  return results.map((r) => {
    const failure = records?.[r.id]?.reapply_error;
    if (!failure || failure.md5 === r.md5) return r;
    return {
      ...r,
      status: 'ERROR',
      message: `Reapply of md5 ${failure.md5} failed at ${failure.at}: ${failure.message}`,
    };
  });
}
