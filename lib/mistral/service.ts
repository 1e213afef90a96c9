import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import type { BackupItem } from '../backups/model.ts';
import { parsePolicy, removePolicy } from '../backups/policy.ts';
import { projectBackups, updateBackup } from '../backups/repository.ts';
import { nextRun, parseUtc } from '../backups/schedule.ts';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../errors.ts';
import { loadInstance } from '../instances/operations.ts';
import { updateInstance } from '../instances/repository.ts';
import { safeText, validate } from '../validation.ts';
import { eventBridgeCron } from './cron.ts';
import { BACKUP_WORKFLOW, type CronTriggerRecord } from './model.ts';
import { executionView, mistralTime, type PolicyInstance, triggerOf, triggerView } from './views.ts';

// Cron triggers are backup policies (on their instance items); executions are the backups the
// scheduler took for them. Everything is scoped to one project: Mistral's `private` scope.

/** Each scheduled backup may keep: a Mistral schedule never deletes what it made. */
const KEEP_ALL = { count: 1000 };

export async function projectPolicies(projectId: string): Promise<PolicyInstance[]> {
  const items: PolicyInstance[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new QueryCommand({
        TableName: config.instancesTable,
        KeyConditionExpression: 'project_id = :p',
        FilterExpression: 'attribute_exists(backup_policy)',
        ExpressionAttributeValues: { ':p': projectId },
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((page.Items ?? []) as PolicyInstance[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

export const CreateCronTrigger = z.looseObject({
  name: safeText(255).min(1),
  pattern: safeText(100).nullish(),
  workflow_name: safeText(255).nullish(),
  workflow_id: safeText(255).nullish(),
  workflow_input: z.string().max(8192).nullish(),
  workflow_params: z.string().max(8192).nullish(),
  first_execution_time: safeText(40).nullish(),
  remaining_executions: z.int().min(1).max(100_000).nullish(),
});

const WorkflowInput = z.looseObject({
  instance: safeText(255).min(1),
  name: safeText(80).nullish(),
  description: safeText(512).nullish(),
  incremental: z.union([z.boolean(), z.int()]).nullish(),
});

function parseInput(text: string | null | undefined) {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '{}');
  } catch {
    throw new BadRequest('workflow_input is not valid JSON.');
  }
  const input = validate(WorkflowInput, value);
  return input;
}

async function findTrigger(projectId: string, name: string): Promise<PolicyInstance> {
  const found = (await projectPolicies(projectId)).find((i) => {
    const t = triggerOf(i);
    return t.name === name || t.id === name;
  });
  if (!found) throw new NotFound(`Cron trigger not found [name=${name}]`);
  return found;
}

export async function createTrigger(projectId: string, body: unknown, now = new Date()) {
  const req = validate(CreateCronTrigger, body);
  const workflow = req.workflow_name ?? req.workflow_id;
  if (workflow !== BACKUP_WORKFLOW) {
    throw new NotFound(`Workflow not found [workflow_identifier=${workflow ?? ''}]`);
  }
  if (!req.pattern)
    throw new BadRequest('Pattern must be given: every cron trigger here runs on a schedule.');
  const input = parseInput(req.workflow_input);
  let schedule: string;
  try {
    schedule = eventBridgeCron(req.pattern);
  } catch (err) {
    throw new BadRequest((err as Error).message);
  }
  const policy = parsePolicy({
    backup_policy: {
      schedule,
      // Trove's workflow backs up incrementally on the most recent backup, the first in full.
      ...(input.incremental ? { full_every: 1000 } : {}),
      retention: KEEP_ALL,
    },
  });
  // The schedule counts from its creation; a first execution time moves that start, and must be
  // a time the pattern matches (the policy runs on the pattern alone).
  let anchor = now;
  if (req.first_execution_time) {
    const first = parseUtc(req.first_execution_time.replace(' ', 'T'));
    if (Number.isNaN(first.getTime()) || first.getTime() <= now.getTime()) {
      throw new BadRequest('first_execution_time must be a time in the future (YYYY-MM-DD HH:MM).');
    }
    anchor = new Date(first.getTime() - 60_000);
    if (nextRun(schedule, anchor).getTime() !== first.getTime()) {
      throw new BadRequest(
        `first_execution_time ${req.first_execution_time} is not a time '${req.pattern}' matches.`,
      );
    }
  }
  const instance = await loadInstance(projectId, input.instance);
  const others = await projectPolicies(projectId);
  if (others.some((i) => triggerOf(i).name === req.name)) {
    throw new Conflict(`Duplicate entry for cron trigger: ${req.name}`);
  }
  const trigger: CronTriggerRecord = {
    id: crypto.randomUUID(),
    name: req.name,
    workflow_name: BACKUP_WORKFLOW,
    workflow_input: req.workflow_input ?? '{}',
    workflow_params: req.workflow_params ?? '{}',
    pattern: req.pattern,
    remaining_executions: req.remaining_executions ?? null,
    first_execution_time: req.first_execution_time ? mistralTime(new Date(anchor.getTime() + 60_000)) : null,
    created_at: mistralTime(now),
  };
  const set = await updateInstance(projectId, instance.id, {
    set: {
      backup_policy: policy,
      backup_policy_created: anchor.toISOString(),
      backup_policy_trigger: trigger,
    },
    remove: ['backup_policy_state'],
    // One policy per instance: a second schedule would silently replace the first.
    condition: { expression: 'attribute_not_exists(backup_policy)' },
  });
  if (!set) {
    throw new Conflict(
      `Instance ${instance.id} already has a backup schedule; delete it before creating another.`,
    );
  }
  return triggerView({
    ...instance,
    backup_policy: policy,
    backup_policy_created: anchor.toISOString(),
    backup_policy_trigger: trigger,
  });
}

export async function listTriggers(projectId: string) {
  return (await projectPolicies(projectId)).map(triggerView);
}

export async function showTrigger(projectId: string, name: string) {
  return triggerView(await findTrigger(projectId, name));
}

export async function deleteTrigger(projectId: string, name: string): Promise<void> {
  const item = await findTrigger(projectId, name);
  await removePolicy(projectId, item.id);
}

/** Each scheduled backup of an instance with a trigger, taken since that trigger was made. */
async function executions(projectId: string) {
  const triggers = new Map((await projectPolicies(projectId)).map((i) => [i.id, i]));
  return (await projectBackups(projectId)).flatMap((b) => {
    const owner = triggers.get(b.instance_id);
    if (!b.scheduled || b.execution_deleted || !owner) return [];
    if (parseUtc(b.created).getTime() < Math.floor(Date.parse(owner.backup_policy_created) / 1000) * 1000)
      return [];
    return [{ backup: b, view: executionView(b, triggerOf(owner)) }];
  });
}

export const ExecutionQuery = z.looseObject({
  marker: safeText(255).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  sort_dirs: z.enum(['asc', 'desc']).optional(),
  sort_keys: z.enum(['created_at', 'id']).optional(),
  workflow_name: safeText(255).optional(),
  state: safeText(40).optional(),
});

export async function listExecutions(projectId: string, query: Record<string, string | undefined>) {
  const q = validate(ExecutionQuery, query);
  const key = q.sort_keys ?? 'created_at';
  const dir = q.sort_dirs === 'desc' ? -1 : 1;
  const all = (await executions(projectId))
    .map((e) => e.view)
    .filter((v) => (q.workflow_name ? v.workflow_name === q.workflow_name : true))
    .filter((v) => (q.state ? v.state === q.state : true))
    .sort((a, b) => dir * (a[key].localeCompare(b[key]) || a.id.localeCompare(b.id)));
  let from = 0;
  if (q.marker) {
    const at = all.findIndex((v) => v.id === q.marker);
    if (at < 0) throw new NotFound(`Execution not found [id=${q.marker}]`);
    from = at + 1;
  }
  return all.slice(from, q.limit === undefined ? undefined : from + q.limit);
}

async function findExecution(
  projectId: string,
  id: string,
): Promise<{ backup: BackupItem; view: ReturnType<typeof executionView> }> {
  const found = (await executions(projectId)).find((e) => e.backup.id === id);
  if (!found) throw new NotFound(`Execution not found [id=${id}]`);
  return found;
}

export async function showExecution(projectId: string, id: string) {
  return (await findExecution(projectId, id)).view;
}

/** Removes the execution record only: the backup it took stays, as Mistral leaves a workflow's effects. */
export async function deleteExecution(projectId: string, id: string, force: boolean): Promise<void> {
  const { backup, view } = await findExecution(projectId, id);
  if (view.state === 'RUNNING' && !force) {
    throw new Forbidden(
      `Only completed executions can be deleted. Use --force to override this. Execution ${id} is in RUNNING state.`,
    );
  }
  await updateBackup(projectId, backup.id, { execution_deleted: true });
}
