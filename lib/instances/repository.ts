import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents, retryingConflicts, troveTime } from '../dynamo.ts';
import { OverLimit } from '../errors.ts';
import { type Page, pageFromOneMore } from '../paging.ts';
import { quotaExceededMessage, type Resource } from '../quotas.ts';
import { deleteCertificate } from './certificate-store.ts';
import type { InstanceItem } from './model.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];
const table = () => config.instancesTable;

export async function getInstance(projectId: string, id: string): Promise<InstanceItem | undefined> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { project_id: projectId, id } }),
  );
  return out.Item as InstanceItem | undefined;
}

/** For the conductor and workflow steps, which know an instance only by its id. */
export async function findInstance(id: string): Promise<InstanceItem | undefined> {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      IndexName: 'by-id',
      KeyConditionExpression: 'id = :id',
      ExpressionAttributeValues: { ':id': id },
    }),
  );
  const key = out.Items?.[0];
  return key ? getInstance(String(key.project_id), id) : undefined;
}

export interface InstancePage {
  items: InstanceItem[];
  /** The id of the last item when more may follow. */
  nextMarker?: string;
}

/**
 * A project's instances in id order, one page at a time: DynamoDB reads only the page. Cluster
 * members are left out unless `includeClustered` (Trove's include_clustered): the filter applies
 * after each read, so reads go on until the page (and one more) is full or the project ends.
 */
export async function listInstances(
  projectId: string,
  page: Page,
  { includeClustered = true }: { includeClustered?: boolean } = {},
): Promise<InstancePage> {
  const read: InstanceItem[] = [];
  let start: Record<string, unknown> | undefined = page.marker
    ? { project_id: projectId, id: page.marker }
    : undefined;
  do {
    const out = await documents.send(
      new QueryCommand({
        TableName: table(),
        KeyConditionExpression: 'project_id = :p',
        ExpressionAttributeValues: { ':p': projectId },
        Limit: page.limit + 1 - read.length,
        ...(includeClustered ? {} : { FilterExpression: 'attribute_not_exists(cluster_id)' }),
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    read.push(...((out.Items ?? []) as InstanceItem[]));
    start = out.LastEvaluatedKey;
  } while (start && read.length < page.limit + 1);
  return pageFromOneMore(read, page.limit, (i) => i.id);
}

/** Writes the new instance and its quota usage together, or neither (413 names the resources). */
/**
 * New instances, their quota charge (quotaChanges' items, first) and the caller's other writes
 * (`also`: a cluster's item, a source's replica list) in one transaction: all or nothing.
 * OverLimit when a quota condition failed; any other failed condition is the caller's
 * TransactionCanceledException to answer.
 */
export async function putNewInstances(
  items: InstanceItem[],
  quota: { items: TransactItem[]; resources: Resource[] },
  also: TransactItem[] = [],
) {
  const puts: TransactItem[] = items.map((item) => ({
    Put: { TableName: table(), Item: item, ConditionExpression: 'attribute_not_exists(id)' },
  }));
  try {
    await documents.send(new TransactWriteCommand({ TransactItems: [...quota.items, ...puts, ...also] }));
  } catch (err) {
    if (err instanceof TransactionCanceledException) {
      const failed = quota.resources.filter(
        (_, i) => err.CancellationReasons?.[i]?.Code === 'ConditionalCheckFailed',
      );
      if (failed.length) throw new OverLimit(quotaExceededMessage(failed));
    }
    throw err;
  }
}

export interface Changes {
  set?: Record<string, unknown>;
  remove?: string[];
  /** A condition on the current item, e.g. "task_status IN (:none, :rr)", with its values. */
  condition?: { expression: string; values?: Record<string, unknown> };
}

/** Applies changes and bumps `updated`; false when the condition (or the item) is not there. */
export async function updateInstance(projectId: string, id: string, changes: Changes): Promise<boolean> {
  const update = updateItem(projectId, id, changes).Update;
  if (!update) throw new Error('no update');
  try {
    await retryingConflicts(() => documents.send(new UpdateCommand(update)));
    return true;
  } catch (err) {
    if ((err as Error).name === 'ConditionalCheckFailedException') return false;
    throw err;
  }
}

/** An Update transaction item for the same changes (e.g. together with quota changes). */
export function updateItem(projectId: string, id: string, changes: Changes): TransactItem {
  const { names, values, expression } = updateExpression(changes);
  return {
    Update: {
      TableName: table(),
      Key: { project_id: projectId, id },
      UpdateExpression: expression,
      ConditionExpression: ['attribute_exists(id)', changes.condition?.expression]
        .filter(Boolean)
        .join(' AND '),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ...values, ...(changes.condition?.values ?? {}) },
    },
  };
}

export async function transact(items: TransactItem[]): Promise<boolean> {
  try {
    await retryingConflicts(() => documents.send(new TransactWriteCommand({ TransactItems: items })));
    return true;
  } catch (err) {
    if (err instanceof TransactionCanceledException) return false;
    throw err;
  }
}

function updateExpression(changes: Changes) {
  const set = Object.fromEntries(
    Object.entries({ ...(changes.set ?? {}), updated: troveTime() }).filter(([, v]) => v !== undefined),
  );
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const assignments = Object.entries(set).map(([k, v], i) => {
    names[`#s${i}`] = k;
    values[`:s${i}`] = v;
    return `#s${i} = :s${i}`;
  });
  const removals = (changes.remove ?? []).map((k, i) => {
    names[`#r${i}`] = k;
    return `#r${i}`;
  });
  const expression = [`SET ${assignments.join(', ')}`, removals.length ? `REMOVE ${removals.join(', ')}` : '']
    .filter(Boolean)
    .join(' ');
  return { names, values, expression };
}

/** The instance item and, in the same transaction, its certificate's (certificate-store.ts). */
export async function deleteInstanceItem(projectId: string, id: string): Promise<void> {
  await documents.send(
    new TransactWriteCommand({
      TransactItems: [
        { Delete: { TableName: table(), Key: { project_id: projectId, id } } },
        deleteCertificate(id),
      ],
    }),
  );
}
