import { DeleteCommand, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import type { InstanceItem } from '../instances/model.ts';
import { getInstance } from '../instances/repository.ts';
import { type Page, type PageOf, pageFromOneMore } from '../paging.ts';
import type { ClusterItem, ClusterTaskName } from './model.ts';

const table = () => config.clustersTable;

export async function getCluster(projectId: string, id: string): Promise<ClusterItem | undefined> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { project_id: projectId, id } }),
  );
  return out.Item as ClusterItem | undefined;
}

/** A project's clusters in id order, one page at a time. */
export async function listClusters(projectId: string, page: Page): Promise<PageOf<ClusterItem>> {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'project_id = :p',
      ExpressionAttributeValues: { ':p': projectId },
      Limit: page.limit + 1,
      ...(page.marker ? { ExclusiveStartKey: { project_id: projectId, id: page.marker } } : {}),
    }),
  );
  return pageFromOneMore((out.Items ?? []) as ClusterItem[], page.limit, (c) => c.id);
}

/** The members that still exist, in the cluster's order. */
export async function membersOf(cluster: ClusterItem): Promise<InstanceItem[]> {
  const items = await Promise.all(cluster.instance_ids.map((id) => getInstance(cluster.project_id, id)));
  return items.filter((i): i is InstanceItem => i !== undefined);
}

/**
 * Sets the task (and other attributes) when the cluster's task is one of `from`; false when it
 * is not (another request or workflow changed it first) or the cluster is gone.
 */
export async function setClusterTask(
  cluster: Pick<ClusterItem, 'project_id' | 'id'>,
  task: ClusterTaskName,
  from: ClusterTaskName[],
  extra: Record<string, unknown> = {},
): Promise<boolean> {
  const names: Record<string, string> = { '#task': 'task', '#updated': 'updated' };
  const values: Record<string, unknown> = { ':task': task, ':now': troveTime() };
  const sets = ['#task = :task', '#updated = :now'];
  Object.entries(extra).forEach(([k, v], i) => {
    names[`#e${i}`] = k;
    values[`:e${i}`] = v;
    sets.push(`#e${i} = :e${i}`);
  });
  const allowed = from.map((t, i) => {
    values[`:f${i}`] = t;
    return `:f${i}`;
  });
  try {
    await documents.send(
      new UpdateCommand({
        TableName: table(),
        Key: { project_id: cluster.project_id, id: cluster.id },
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: `attribute_exists(id) AND #task IN (${allowed.join(', ')})`,
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

export async function deleteClusterItem(projectId: string, id: string): Promise<void> {
  await documents.send(new DeleteCommand({ TableName: table(), Key: { project_id: projectId, id } }));
}
