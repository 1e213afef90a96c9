import { reapplyOnInstance, reapplyStepFailed } from '#lib/modules/reapply';

// Task states of Trove's module reapply (statemachines/module-reapply.asl.yml): one instance's
// reapply, and the record of one that failed past its retries.
export const reapply = reapplyOnInstance;
export const reapplyFailed = reapplyStepFailed;
