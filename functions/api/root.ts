import { loadReadyInstance } from '#lib/databases/instance';
import { EnableRootRequest, type RootEnabledResponse, type RootStatusResponse } from '#lib/databases/schemas';
import { disableRoot, enableRoot, rootEnabled, rootUserName } from '#lib/databases/service';
import { parsedBody } from '#lib/http/body';
import type { ProjectRoute } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { loadInstance } from '#lib/instances/operations';
import { validate } from '#lib/validation';

/** `GET /root`: from the root history alone, as Trove's default root controller (no guest call). */
export const show: ProjectRoute = async (event, caller) => {
  const item = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  return json(200, { rootEnabled: rootEnabled(item) } satisfies RootStatusResponse);
};

/** `POST /root`: the password (given, or generated) is returned once and stored nowhere. */
export const enable: ProjectRoute = async (event, caller) => {
  const body = parsedBody(event);
  const request = body === undefined ? undefined : validate(EnableRootRequest.unwrap(), body);
  const item = await loadReadyInstance(caller.projectId, event.pathParameters?.instance_id ?? '', {
    redis: 'root',
  });
  const password = await enableRoot(item, caller.claims.user_id, request?.password);
  return json(200, { user: { name: rootUserName(item), password } } satisfies RootEnabledResponse);
};

/** `DELETE /root`: 204, or 404 when root is not enabled. */
export const disable: ProjectRoute = async (event, caller) => {
  const item = await loadReadyInstance(caller.projectId, event.pathParameters?.instance_id ?? '', {
    redis: 'root',
  });
  await disableRoot(item);
  return { statusCode: 204, body: '' };
};
