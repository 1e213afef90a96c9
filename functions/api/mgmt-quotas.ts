import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import type { HttpEvent } from '#lib/http/response';
import { json } from '#lib/http/response';
import { adminOnly, byRouteKey } from '#lib/http/routing';
import { showQuotas, updateQuotas } from '#lib/quotas';
import { UpdateQuotasRequest } from '#lib/quotas/schemas';
import { validate } from '#lib/validation';

const target = (event: HttpEvent) => event.pathParameters?.target_project_id ?? '';

const show: ProjectRoute = async (event, caller) =>
  json(200, { quotas: await showQuotas(caller, target(event)) });

// Admin first, as Trove: a non-admin learns nothing about the body.
const update: ProjectRoute = adminOnly(async (event, caller) => {
  const request = validate(UpdateQuotasRequest, parsedBody(event));
  return json(200, { quotas: await updateQuotas(caller, target(event), request) });
});

const q = '/v1.0/{project_id}/mgmt/quotas/{target_project_id}';
export const handler = projectHandler(byRouteKey({ [`GET ${q}`]: show, [`PUT ${q}`]: update }));
