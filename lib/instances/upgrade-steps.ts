import { isWaitTimeout, silenceFault } from '../conductor/faults.ts';
import { troveTime } from '../dynamo.ts';
import type { InstanceItem, UpgradeRecord } from './model.ts';
import { findInstance, updateInstance } from './repository.ts';
import { faultOf, type StepInput } from './steps.ts';

// The last step of the upgrade workflow (statemachines/instance-upgrade.asl.yml): Trove's
// `finally`. Success records the new datastore version; failure keeps the old one (the guest has
// put it back) with a fault naming the step that failed. Only the upgrade this execution started
// is ended, once.

type StepError = { Error?: string; Cause?: string };

export interface EndUpgradeInput extends StepInput {
  execution: string;
  /** Where the workflow failed before the guest's own steps (the pre-upgrade backup). */
  failed_step?: string;
  error?: StepError;
  result?: { method?: string; seconds?: number; tables?: number; rows?: number };
}

export async function endUpgrade(input: EndUpgradeInput) {
  const item = await findInstance(input.instance_id);
  const upgrade = item?.upgrade;
  if (!item || item.project_id !== input.project_id || item.task_status !== 'UPGRADING') return {};
  if (upgrade?.execution !== input.execution) return {};
  const set: Record<string, unknown> = { task_status: 'NONE' };
  if (!input.error) set.datastore = upgrade.to;
  else set.fault = upgradeFault(item, upgrade, input.error, input.failed_step);
  await updateInstance(item.project_id, item.id, {
    set,
    remove: input.error ? ['upgrade'] : ['upgrade', 'fault'],
    condition: {
      expression: 'task_status = :upgrading AND upgrade.execution = :e',
      values: { ':upgrading': 'UPGRADING', ':e': input.execution },
    },
  });
  return {};
}

function upgradeFault(item: InstanceItem, upgrade: UpgradeRecord, error: StepError, failedStep?: string) {
  const why = isWaitTimeout(error) ? silenceFault(item, error, 'the upgrade') : faultOf(error);
  // The guest's message names its step ("... failed at step pg_upgrade: ..."); the backup's is ours.
  const message = failedStep
    ? `Upgrading to datastore version ${upgrade.to.version} failed at step ${failedStep}: ${why.message.replace(/\.$/, '')}`
    : `Upgrading to datastore version ${upgrade.to.version} failed: ${why.message.replace(/\.$/, '')}`;
  return {
    message: `${message}; the instance runs on ${upgrade.from.version} again.`,
    created: troveTime(),
    details: why.details,
  };
}
