import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import { accepted, baseUrl, type HttpEvent, json } from '#lib/http/response';
import { adminOnly, byRouteKey } from '#lib/http/routing';
import {
  listMgmtInstances,
  loadAnyInstance,
  mgmtInstanceAction,
  mgmtInstanceDetail,
  mgmtInstanceView,
  rootHistoryView,
} from '#lib/instances/mgmt';
import { MgmtActionRequest } from '#lib/instances/schemas';
import { validate } from '#lib/validation';

// Trove's management API for instances (admin_context on every route: a non-admin gets 401).
const id = (event: HttpEvent) => event.pathParameters?.instance_id ?? '';
const ctx = (event: HttpEvent) => ({ base: baseUrl(event), isAdmin: true });

const list: ProjectRoute = async (event) => {
  const q = event.queryStringParameters ?? {};
  const page = await listMgmtInstances({ deleted: q.deleted, project_id: q.project_id }, pageOf(event));
  return pageResponse(event, 'instances', {
    ...page,
    items: page.items.map((i) => mgmtInstanceView(i, ctx(event))),
  });
};

const show: ProjectRoute = async (event) =>
  json(200, { instance: mgmtInstanceDetail(await loadAnyInstance(id(event)), ctx(event)) });

const action: ProjectRoute = async (event) => {
  await mgmtInstanceAction(id(event), validate(MgmtActionRequest, parsedBody(event)));
  return accepted();
};

const root: ProjectRoute = async (event) => json(200, rootHistoryView(await loadAnyInstance(id(event))));

const m = '/v1.0/{project_id}/mgmt/instances';
export const handler = projectHandler(
  byRouteKey({
    [`GET ${m}`]: adminOnly(list),
    [`GET ${m}/{instance_id}`]: adminOnly(show),
    [`POST ${m}/{instance_id}/action`]: adminOnly(action),
    [`GET ${m}/{instance_id}/root`]: adminOnly(root),
  }),
);
