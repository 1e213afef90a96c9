import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { BadRequest, NotFound } from '../errors.ts';
import type { ViewContext } from '../instances/views.ts';
import { type Page, type PageOf, pageByKey } from '../paging.ts';
import type { ClusterItem } from './model.ts';
import { membersOf, setClusterTask } from './repository.ts';
import { ClusterView } from './schemas.ts';
import { clusterView } from './views.ts';

// Trove's management API for clusters (trove/extensions/mgmt/clusters): every project's
// clusters for an admin, with the project and whether it was deleted, and `reset-task`.

/**
 * Every project's clusters by id: an operator's question, asked rarely, for which no index is
 * kept (the whole table is read). Deleted clusters leave no record, so `deleted=true` lists none.
 */
async function scanClusters(filter?: { id: string }): Promise<ClusterItem[]> {
  const items: ClusterItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(
      new ScanCommand({
        TableName: config.clustersTable,
        ExclusiveStartKey: start,
        ...(filter ? { FilterExpression: 'id = :id', ExpressionAttributeValues: { ':id': filter.id } } : {}),
      }),
    );
    items.push(...((out.Items ?? []) as ClusterItem[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

export async function listMgmtClusters(
  deleted: string | undefined,
  page: Page,
): Promise<PageOf<ClusterItem>> {
  if (deleted?.toLowerCase() === 'true') return { items: [] };
  return pageByKey(await scanClusters(), (c) => c.id, page);
}

/** Any project's cluster, by id (Trove's 404 when there is none). */
export async function loadAnyCluster(id: string): Promise<ClusterItem> {
  const [cluster] = await scanClusters({ id });
  if (!cluster) throw new NotFound(`Cluster '${id}' cannot be found.`);
  return cluster;
}

export const MgmtClusterView = ClusterView.extend({
  tenant_id: z.string(),
  deleted: z.boolean(),
  deleted_at: z.string().optional(),
});

export const MgmtClusterResponse = z.object({ cluster: MgmtClusterView });
export const MgmtClustersResponse = z.object({
  clusters: z.array(MgmtClusterView),
  links: z.array(z.looseObject({})).optional(),
});
export const MgmtClusterActionRequest = z.looseObject({ 'reset-task': z.looseObject({}).optional() });

/** Trove's MgmtClusterView: the cluster's view with its project and `deleted` (always false here). */
export async function mgmtClusterView(cluster: ClusterItem, ctx: ViewContext, withServers: boolean) {
  const view = clusterView(cluster, await membersOf(cluster), ctx, { withServers });
  return { ...view, tenant_id: cluster.project_id, deleted: false };
}

/** `POST /mgmt/clusters/{id}/action`: Trove's one action there, `reset-task` (the cluster's task only). */
export async function mgmtClusterAction(id: string, body: unknown): Promise<void> {
  if (typeof body !== 'object' || body === null || Object.keys(body).length === 0)
    throw new BadRequest('Invalid request body.');
  const cluster = await loadAnyCluster(id);
  if (!('reset-task' in body)) throw new BadRequest('Invalid cluster action requested.');
  // A rolling workflow still running finds the task changed at its next step and stops there.
  if (cluster.task !== 'NONE') await setClusterTask(cluster, 'NONE', [cluster.task]);
}
