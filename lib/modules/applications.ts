import { QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import type { InstanceItem } from '../instances/model.ts';
import type { InstanceModuleRecord } from './model.ts';

// Trove's instance_modules rows: which module, at which md5, an instance has applied. They are a
// map on the instance item itself, so an instance that is deleted takes its rows with it, as
// Trove counts only non-terminated instances.

const table = () => config.instancesTable;

/** Records the modules the guest applied; never recreates an instance deleted meanwhile. */
export async function recordApplications(
  instance: InstanceItem,
  modules: { id: string; md5: string }[],
  now: string,
): Promise<void> {
  const key = { project_id: instance.project_id, id: instance.id };
  await documents.send(
    new UpdateCommand({
      TableName: table(),
      Key: key,
      UpdateExpression: 'SET modules = if_not_exists(modules, :empty)',
      ConditionExpression: 'attribute_exists(id)',
      ExpressionAttributeValues: { ':empty': {} },
    }),
  );
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = modules.map((m, i) => {
    const previous = instance.modules?.[m.id];
    names[`#m${i}`] = m.id;
    values[`:r${i}`] = {
      md5: m.md5,
      // A module applied again at the same md5 keeps when it was first applied (Trove's update).
      created: previous?.md5 === m.md5 ? previous.created : now,
      updated: now,
    } satisfies InstanceModuleRecord;
    return `modules.#m${i} = :r${i}`;
  });
  if (!sets.length) return;
  await documents.send(
    new UpdateCommand({
      TableName: table(),
      Key: key,
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: 'attribute_exists(id)',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    }),
  );
}

/** One conditional change to an instance's record of a module (`#m` names the module). */
function changeRecord(
  instance: Pick<InstanceItem, 'project_id' | 'id'>,
  moduleId: string,
  update: string,
  condition: string,
  values?: Record<string, unknown>,
) {
  return documents.send(
    new UpdateCommand({
      TableName: table(),
      Key: { project_id: instance.project_id, id: instance.id },
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#m': moduleId },
      ...(values ? { ExpressionAttributeValues: values } : {}),
    }),
  );
}

export async function dropApplication(instance: InstanceItem, moduleId: string): Promise<void> {
  if (!instance.modules?.[moduleId]) return;
  await changeRecord(instance, moduleId, 'REMOVE modules.#m', 'attribute_exists(id)');
}

/** An instance that has the module, with its record (Trove's instance_modules row). */
export interface ModuleHolder {
  project_id: string;
  id: string;
  record: InstanceModuleRecord;
}

/**
 * Each instance that has the module, of any project (a scan: modules change rarely), or of one
 * project (a query of its partition).
 */
export async function moduleHolders(moduleId: string, projectId?: string): Promise<ModuleHolder[]> {
  const found: ModuleHolder[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const common = {
      TableName: table(),
      FilterExpression: 'attribute_exists(modules.#m)',
      ProjectionExpression: 'project_id, id, modules.#m',
      ExclusiveStartKey: start,
    };
    const out = await documents.send(
      projectId === undefined
        ? new ScanCommand({ ...common, ExpressionAttributeNames: { '#m': moduleId } })
        : new QueryCommand({
            ...common,
            KeyConditionExpression: 'project_id = :p',
            ExpressionAttributeNames: { '#m': moduleId },
            ExpressionAttributeValues: { ':p': projectId },
          }),
    );
    for (const item of out.Items ?? []) {
      const { project_id, id, modules } = item as Pick<InstanceItem, 'project_id' | 'id' | 'modules'>;
      const record = modules?.[moduleId];
      if (record) found.push({ project_id, id, record });
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return found.sort((a, b) => a.project_id.localeCompare(b.project_id) || a.id.localeCompare(b.id));
}

async function applicationsEverywhere(moduleId: string): Promise<InstanceModuleRecord[]> {
  return (await moduleHolders(moduleId)).map((h) => h.record);
}

/**
 * A reapply that did not take: the record keeps the md5 the instance has, and says which one
 * failed and why. Only while the instance still has the module at the md5 the reapply started
 * from: an apply meanwhile wrote the truth already.
 */
export async function recordReapplyFailure(
  holder: Pick<ModuleHolder, 'project_id' | 'id'>,
  moduleId: string,
  fromMd5: string,
  failure: NonNullable<InstanceModuleRecord['reapply_error']>,
): Promise<boolean> {
  try {
    await changeRecord(holder, moduleId, 'SET modules.#m.reapply_error = :e', 'modules.#m.md5 = :from', {
      ':e': failure,
      ':from': fromMd5,
    });
    return true;
  } catch (err) {
    if ((err as Error).name === 'ConditionalCheckFailedException') return false;
    throw err;
  }
}

/** How many instances have the module at this md5 (Trove's instance_count and live_update check). */
export async function countApplications(moduleId: string, md5: string): Promise<number> {
  return (await applicationsEverywhere(moduleId)).filter((r) => r.md5 === md5).length;
}

/** Trove's module_instance_count: per md5, how many instances and when they were updated. */
export async function applicationsByMd5(moduleId: string) {
  const groups = new Map<string, InstanceModuleRecord[]>();
  for (const r of await applicationsEverywhere(moduleId)) {
    groups.set(r.md5, [...(groups.get(r.md5) ?? []), r]);
  }
  return [...groups.entries()].map(([md5, records]) => ({
    md5,
    count: records.length,
    min_updated: records.map((r) => r.updated).sort()[0] ?? '',
    max_updated:
      records
        .map((r) => r.updated)
        .sort()
        .at(-1) ?? '',
  }));
}

/** The project's instances that have the module (Trove loads them in the caller's project). */
export async function instancesWithModule(projectId: string, moduleId: string): Promise<InstanceItem[]> {
  const found: InstanceItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(
      new QueryCommand({
        TableName: table(),
        KeyConditionExpression: 'project_id = :p',
        FilterExpression: 'attribute_exists(modules.#m)',
        ExpressionAttributeNames: { '#m': moduleId },
        ExpressionAttributeValues: { ':p': projectId },
        ExclusiveStartKey: start,
      }),
    );
    found.push(...((out.Items ?? []) as InstanceItem[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return found.sort((a, b) => a.id.localeCompare(b.id));
}
