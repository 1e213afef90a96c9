import { listMgmtClusters, loadAnyCluster, mgmtClusterAction, mgmtClusterView } from '#lib/clusters/mgmt';
import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import { accepted, baseUrl, type HttpEvent, json } from '#lib/http/response';
import { adminOnly, byRouteKey } from '#lib/http/routing';

// Trove's management API for clusters (admin_context on every route, as /mgmt/instances).
const id = (event: HttpEvent) => event.pathParameters?.cluster_id ?? '';
const ctx = (event: HttpEvent) => ({ base: baseUrl(event), isAdmin: true });

const list: ProjectRoute = async (event) => {
  const page = await listMgmtClusters(event.queryStringParameters?.deleted, pageOf(event));
  const items = await Promise.all(page.items.map((c) => mgmtClusterView(c, ctx(event), false)));
  return pageResponse(event, 'clusters', { ...page, items });
};

const show: ProjectRoute = async (event) =>
  json(200, { cluster: await mgmtClusterView(await loadAnyCluster(id(event)), ctx(event), true) });

const action: ProjectRoute = async (event) => {
  await mgmtClusterAction(id(event), parsedBody(event));
  return accepted();
};

const m = '/v1.0/{project_id}/mgmt/clusters';
export const handler = projectHandler(
  byRouteKey({
    [`GET ${m}`]: adminOnly(list),
    [`GET ${m}/{cluster_id}`]: adminOnly(show),
    [`POST ${m}/{cluster_id}/action`]: adminOnly(action),
  }),
);
