import { createCluster } from '#lib/clusters/create';
import { clusterAction, deleteCluster, loadCluster, loadMember } from '#lib/clusters/operations';
import { listClusters, membersOf } from '#lib/clusters/repository';
import { clusterRootEnabled, enableClusterRoot } from '#lib/clusters/root';
import { CreateClusterRequest } from '#lib/clusters/schemas';
import { clusterView } from '#lib/clusters/views';
import { EnableRootRequest, type RootEnabledResponse, type RootStatusResponse } from '#lib/databases/schemas';
import type { Caller } from '#lib/http/auth';
import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, baseUrl, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { instanceDetail } from '#lib/instances/views';
import { validate } from '#lib/validation';

const clusterId = (event: HttpEvent) => event.pathParameters?.cluster_id ?? '';
const ctx = (event: HttpEvent, caller: Caller) => ({ base: baseUrl(event), isAdmin: caller.isAdmin });

/** `POST /clusters`: 200 with the new cluster, its members without server data (Trove's). */
const create: ProjectRoute = async (event, caller) => {
  const request = validate(CreateClusterRequest, parsedBody(event)).cluster;
  const { cluster, members } = await createCluster(caller.projectId, request);
  return json(200, { cluster: clusterView(cluster, members, ctx(event, caller)) });
};

/** `GET /clusters`: paginated by id, each without server data. */
const list: ProjectRoute = async (event, caller) => {
  const page = await listClusters(caller.projectId, pageOf(event));
  const items = await Promise.all(
    page.items.map(async (c) => clusterView(c, await membersOf(c), ctx(event, caller))),
  );
  return pageResponse(event, 'clusters', { ...page, items });
};

/** `GET /clusters/{id}`: members with status, flavor, volume and addresses, and the cluster's `ip`. */
const show: ProjectRoute = async (event, caller) => {
  const cluster = await loadCluster(caller.projectId, clusterId(event));
  const view = clusterView(cluster, await membersOf(cluster), ctx(event, caller), { withServers: true });
  return json(200, { cluster: view });
};

/** `GET /clusters/{id}/instances/{iid}`: the member's instance view. */
const showInstance: ProjectRoute = async (event, caller) => {
  const member = await loadMember(
    caller.projectId,
    clusterId(event),
    event.pathParameters?.instance_id ?? '',
  );
  return json(200, { instance: instanceDetail(member, ctx(event, caller)) });
};

const remove: ProjectRoute = async (event, caller) => {
  await deleteCluster(caller.projectId, clusterId(event));
  return accepted();
};

/** `POST /clusters/{id}`: one action; 202 with the cluster's view (Trove's, without server data). */
const action: ProjectRoute = async (event, caller) => {
  const cluster = await clusterAction(caller.projectId, clusterId(event), parsedBody(event), caller.isAdmin);
  return json(202, { cluster: clusterView(cluster, await membersOf(cluster), ctx(event, caller)) });
};

/** `GET /clusters/{id}/root`: from the root history alone, as Trove's cluster root controller. */
const rootShow: ProjectRoute = async (event, caller) => {
  const cluster = await loadCluster(caller.projectId, clusterId(event));
  return json(200, { rootEnabled: await clusterRootEnabled(cluster) } satisfies RootStatusResponse);
};

/** `POST /clusters/{id}/root`: one password for every member, returned once and stored nowhere. */
const rootEnable: ProjectRoute = async (event, caller) => {
  const body = parsedBody(event);
  const request = body === undefined ? undefined : validate(EnableRootRequest.unwrap(), body);
  const cluster = await loadCluster(caller.projectId, clusterId(event));
  const user = await enableClusterRoot(cluster, caller.claims.user_id, request?.password);
  return json(200, { user } satisfies RootEnabledResponse);
};

const c = '/v1.0/{project_id}/clusters';
export const handler = projectHandler(
  byRouteKey({
    [`GET ${c}`]: list,
    [`POST ${c}`]: create,
    [`GET ${c}/{cluster_id}`]: show,
    [`POST ${c}/{cluster_id}`]: action,
    [`DELETE ${c}/{cluster_id}`]: remove,
    [`GET ${c}/{cluster_id}/instances/{instance_id}`]: showInstance,
    [`GET ${c}/{cluster_id}/root`]: rootShow,
    [`POST ${c}/{cluster_id}/root`]: rootEnable,
  }),
);
