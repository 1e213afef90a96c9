import {
  GetCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { BadRequest } from '../errors.ts';
import { MATCH_ALL, type ModuleItem } from './model.ts';

// Modules live in their own table, keyed by project (or ALL_TENANTS) first. Trove's uniqueness of
// (name, type, tenant, datastore, version) is a guard item written in the same transaction as the
// module, in a partition of its own, so two concurrent creates cannot both succeed.

type Write = NonNullable<TransactWriteCommandInput['TransactItems']>[number];
const table = () => config.modulesTable;

const guardKey = (m: ModuleItem) => ({
  project_id: `unique#${m.project_id}`,
  id: JSON.stringify([m.type, m.datastore_id ?? MATCH_ALL, m.datastore_version_id ?? MATCH_ALL, m.name]),
});
const sameKey = (a: ModuleItem, b: ModuleItem) =>
  JSON.stringify([a.project_id, guardKey(a)]) === JSON.stringify([b.project_id, guardKey(b)]);

function alreadyExists(m: ModuleItem): BadRequest {
  // Trove's ModuleAlreadyExists (400), naming the ids it compared.
  return new BadRequest(
    `A module with the name '${m.name}' already exists for datastore '${m.datastore_id ?? MATCH_ALL}' and datastore version '${m.datastore_version_id ?? MATCH_ALL}'`,
  );
}

async function transact(items: Write[], clash: ModuleItem): Promise<void> {
  try {
    await documents.send(new TransactWriteCommand({ TransactItems: items }));
  } catch (err) {
    const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
    // The guard is always the last write: only its failure means the name is taken.
    if (reasons.at(-1)?.Code === 'ConditionalCheckFailed') throw alreadyExists(clash);
    if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) {
      throw new BadRequest('The module was changed meanwhile; try again.');
    }
    throw err;
  }
}

const putGuard = (m: ModuleItem): Write => ({
  Put: {
    TableName: table(),
    Item: { ...guardKey(m), module_id: m.id },
    ConditionExpression: 'attribute_not_exists(id)',
  },
});

export async function createModuleItem(m: ModuleItem): Promise<void> {
  await transact(
    [{ Put: { TableName: table(), Item: m, ConditionExpression: 'attribute_not_exists(id)' } }, putGuard(m)],
    m,
  );
}

/** Replaces a module as it was read (same md5 and updated), moving its guard when its key changed. */
export async function replaceModuleItem(before: ModuleItem, after: ModuleItem): Promise<void> {
  const moved = before.project_id !== after.project_id;
  const unchanged = { ':u': before.updated, ':m': before.md5 };
  const writes: Write[] = [];
  if (moved) {
    writes.push({
      Delete: {
        TableName: table(),
        Key: { project_id: before.project_id, id: before.id },
        ConditionExpression: 'updated = :u AND md5 = :m',
        ExpressionAttributeValues: unchanged,
      },
    });
    writes.push({
      Put: { TableName: table(), Item: after, ConditionExpression: 'attribute_not_exists(id)' },
    });
  } else {
    writes.push({
      Put: {
        TableName: table(),
        Item: after,
        ConditionExpression: 'updated = :u AND md5 = :m',
        ExpressionAttributeValues: unchanged,
      },
    });
  }
  if (!sameKey(before, after)) {
    writes.push({ Delete: { TableName: table(), Key: guardKey(before) } });
    writes.push(putGuard(after));
  }
  await transact(writes, after);
}

export async function deleteModuleItem(m: ModuleItem): Promise<void> {
  await transact(
    [
      {
        Delete: {
          TableName: table(),
          Key: { project_id: m.project_id, id: m.id },
          ConditionExpression: 'md5 = :m',
          ExpressionAttributeValues: { ':m': m.md5 },
        },
      },
      { Delete: { TableName: table(), Key: guardKey(m) } },
    ],
    m,
  );
}

export async function getModuleItem(partition: string, id: string): Promise<ModuleItem | undefined> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { project_id: partition, id }, ConsistentRead: true }),
  );
  return out.Item as ModuleItem | undefined;
}

/** Any project's module by id (admins): the by-id index gives its partition. */
export async function findModuleAnywhere(id: string): Promise<ModuleItem | undefined> {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      IndexName: 'by-id',
      KeyConditionExpression: 'id = :id',
      ExpressionAttributeValues: { ':id': id },
    }),
  );
  const key = (out.Items ?? []).find((k) => !String(k.project_id).startsWith('unique#'));
  return key ? getModuleItem(String(key.project_id), id) : undefined;
}

/** Every page of a query or scan: Trove lists modules whole, without pagination. */
async function drain(page: (start?: Record<string, unknown>) => QueryCommand | ScanCommand) {
  const items: ModuleItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(page(start) as QueryCommand);
    items.push(...((out.Items ?? []) as ModuleItem[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

export function modulesOfPartition(partition: string): Promise<ModuleItem[]> {
  return drain(
    (start) =>
      new QueryCommand({
        TableName: table(),
        KeyConditionExpression: 'project_id = :p',
        ExpressionAttributeValues: { ':p': partition },
        ExclusiveStartKey: start,
      }),
  );
}

/** Every module of every project (Trove's admin list); the guard items are left out. */
export function allModules(): Promise<ModuleItem[]> {
  return drain(
    (start) =>
      new ScanCommand({
        TableName: table(),
        FilterExpression: 'attribute_exists(md5)',
        ExclusiveStartKey: start,
      }),
  );
}
