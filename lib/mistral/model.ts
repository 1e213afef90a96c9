/**
 * What a Mistral cron trigger says beyond the backup policy it became: kept on the instance item
 * beside `backup_policy` (one item, one source of truth), so the trigger reads back as it was made.
 */
export interface CronTriggerRecord {
  id: string;
  name: string;
  workflow_name: string;
  /** JSON text, exactly as the client sent it: troveclient compares executions' input with it. */
  workflow_input: string;
  workflow_params: string;
  /** The Unix cron pattern as given; the policy's `schedule` is its EventBridge form. */
  pattern: string;
  /** Runs left before the trigger (and its policy) goes; null: no end. */
  remaining_executions: number | null;
  first_execution_time: string | null;
  /** Mistral's time format, `YYYY-MM-DD HH:MM:SS`, UTC. */
  created_at: string;
}

/** The workflow troveclient's `schedule-create` names; the only one this facade runs. */
export const BACKUP_WORKFLOW = 'trove.backup_create';
