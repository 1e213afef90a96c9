import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import type { BackupStrategy } from './schemas.ts';

// Trove's backup strategies: the container (here, a key prefix inside the backup bucket) used for
// a project's or an instance's backups. An upsert per (project, instance); '' is project-wide.
// DynamoDB keys cannot be empty strings, so the project-wide entry is stored under PROJECT_WIDE.

const PROJECT_WIDE = '*';
const stored = (instanceId: string) => instanceId || PROJECT_WIDE;

export async function putStrategy(s: BackupStrategy): Promise<void> {
  await documents.send(
    new PutCommand({
      TableName: config.backupStrategiesTable,
      Item: { ...s, instance_id: stored(s.instance_id) },
    }),
  );
}

export async function listStrategies(projectId: string, instanceId?: string): Promise<BackupStrategy[]> {
  const out = await documents.send(
    new QueryCommand({
      TableName: config.backupStrategiesTable,
      KeyConditionExpression: 'project_id = :p',
      ExpressionAttributeValues: { ':p': projectId },
    }),
  );
  const items = ((out.Items ?? []) as BackupStrategy[]).map((s) =>
    s.instance_id === PROJECT_WIDE ? { ...s, instance_id: '' } : s,
  );
  return instanceId === undefined ? items : items.filter((s) => s.instance_id === instanceId);
}

export async function deleteStrategy(projectId: string, instanceId: string): Promise<void> {
  await documents.send(
    new DeleteCommand({
      TableName: config.backupStrategiesTable,
      Key: { project_id: projectId, instance_id: stored(instanceId) },
    }),
  );
}
