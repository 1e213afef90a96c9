import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import { NotFound } from '../errors.ts';
import type { BackupItem } from './model.ts';

const table = () => config.backupsTable;

export async function getBackup(projectId: string, id: string): Promise<BackupItem> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { project_id: projectId, id } }),
  );
  if (!out.Item) throw new NotFound(`Backup ${id} cannot be found.`);
  return out.Item as BackupItem;
}

export async function putBackup(item: BackupItem): Promise<void> {
  await documents.send(
    new PutCommand({ TableName: table(), Item: item, ConditionExpression: 'attribute_not_exists(id)' }),
  );
}

/** Sets fields and `updated`; with `from`, only while the backup is still in one of those states. */
export async function updateBackup(
  projectId: string,
  id: string,
  set: Record<string, unknown>,
  from?: BackupItem['status'][],
): Promise<boolean> {
  // Absent values (say, no LSN for a PostgreSQL backup) are left out, not written as undefined.
  const fields = Object.fromEntries(
    Object.entries({ ...set, updated: troveTime() }).filter(([, v]) => v !== undefined),
  );
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const parts = Object.entries(fields).map(([k, v], i) => {
    names[`#f${i}`] = k;
    values[`:f${i}`] = v;
    return `#f${i} = :f${i}`;
  });
  let condition = 'attribute_exists(id)';
  if (from?.length) {
    names['#status'] = 'status';
    condition += ` AND #status IN (${from.map((_, i) => `:from${i}`).join(', ')})`;
    from.forEach((s, i) => {
      values[`:from${i}`] = s;
    });
  }
  try {
    await documents.send(
      new UpdateCommand({
        TableName: table(),
        Key: { project_id: projectId, id },
        UpdateExpression: `SET ${parts.join(', ')}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === 'ConditionalCheckFailedException') return false;
    throw err;
  }
}

export async function deleteBackupItem(projectId: string, id: string): Promise<void> {
  await documents.send(new DeleteCommand({ TableName: table(), Key: { project_id: projectId, id } }));
}

/** All of a project's backups (a project has tens, not millions: Trove's quota is 50). */
export async function projectBackups(projectId: string): Promise<BackupItem[]> {
  const items: BackupItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(
      new QueryCommand({
        TableName: table(),
        KeyConditionExpression: 'project_id = :p',
        ExpressionAttributeValues: { ':p': projectId },
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((out.Items ?? []) as BackupItem[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}
