import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { BadRequest, NotFound } from '../errors.ts';
import { type Page, pageFromOneMore } from '../paging.ts';
import type { ConfigurationItem } from './model.ts';

const table = () => config.configurationsTable;

export async function getConfiguration(projectId: string, id: string): Promise<ConfigurationItem> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { project_id: projectId, id } }),
  );
  if (!out.Item) throw new NotFound(`Resource ${id} cannot be found.`);
  return out.Item as ConfigurationItem;
}

export async function putConfiguration(item: ConfigurationItem): Promise<void> {
  await documents.send(new PutCommand({ TableName: table(), Item: item }));
}

export async function deleteConfigurationItem(projectId: string, id: string): Promise<void> {
  await documents.send(new DeleteCommand({ TableName: table(), Key: { project_id: projectId, id } }));
}

export async function listConfigurations(projectId: string, page: Page) {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'project_id = :p',
      ExpressionAttributeValues: { ':p': projectId },
      Limit: page.limit + 1,
      ...(page.marker ? { ExclusiveStartKey: { project_id: projectId, id: page.marker } } : {}),
    }),
  );
  return pageFromOneMore((out.Items ?? []) as ConfigurationItem[], page.limit, (c) => c.id);
}

/** The project's instances that use a group (Trove counts only the caller's own project). */
export async function instancesUsing(
  projectId: string,
  configurationId: string,
): Promise<{ id: string; name: string }[]> {
  const found: { id: string; name: string }[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(
      new QueryCommand({
        TableName: config.instancesTable,
        KeyConditionExpression: 'project_id = :p',
        FilterExpression: 'configuration_id = :c',
        ProjectionExpression: 'id, #n',
        ExpressionAttributeNames: { '#n': 'name' },
        ExpressionAttributeValues: { ':p': projectId, ':c': configurationId },
        ExclusiveStartKey: start,
      }),
    );
    found.push(...((out.Items ?? []) as { id: string; name: string }[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return found;
}

/**
 * The group `id`, which must be for the datastore version it is to be applied to (at create, to
 * a replica, to a cluster's members, or attached later): else Trove's 400.
 */
export async function configurationForVersion(
  projectId: string,
  id: string,
  version: { id: string; name: string },
): Promise<ConfigurationItem> {
  const group = await getConfiguration(projectId, id);
  if (group.datastore.version_id !== version.id)
    throw new BadRequest(
      `Configuration group ${id} is for datastore version ${group.datastore.version}, not ${version.name}.`,
    );
  return group;
}
