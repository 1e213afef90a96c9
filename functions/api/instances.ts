import { getConfiguration } from '#lib/configurations/repository';
import { effectiveConfiguration } from '#lib/configurations/service';
import { configurationRef } from '#lib/configurations/views';
import { loadReadyInstance } from '#lib/databases/instance';
import type { Caller } from '#lib/http/auth';
import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, baseUrl, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { timed } from '#lib/http/timing';
import { instanceAction } from '#lib/instances/actions';
import { createInstance } from '#lib/instances/create';
import { deleteInstance, loadInstance, updateInstanceAttributes } from '#lib/instances/operations';
import { listInstances } from '#lib/instances/repository';
import {
  ActionRequest,
  CreateInstanceRequest,
  type InstanceConfigurationResponse,
  UpdateInstanceRequest,
} from '#lib/instances/schemas';
import { instanceDetail, instanceSummary } from '#lib/instances/views';
import { validate } from '#lib/validation';

const instanceId = (event: HttpEvent) => event.pathParameters?.instance_id ?? '';
const ctx = (event: HttpEvent, caller: Caller) => ({ base: baseUrl(event), isAdmin: caller.isAdmin });

async function listPage(event: HttpEvent, caller: Caller, view: typeof instanceSummary) {
  // Trove's include_clustered: cluster members are listed only when asked for.
  const includeClustered = /^true$/i.test(event.queryStringParameters?.include_clustered ?? '');
  const result = await timed(event, 'query', () =>
    listInstances(caller.projectId, pageOf(event), { includeClustered }),
  );
  return pageResponse(event, 'instances', {
    ...result,
    items: result.items.map((i) => view(i, ctx(event, caller))),
  });
}

/** `GET /instances`: Trove's InstanceView per item, paginated by id. */
const list: ProjectRoute = (event, caller) => listPage(event, caller, instanceSummary);

/** `GET /instances/detail`: the same list with detail fields. */
const detail: ProjectRoute = (event, caller) => listPage(event, caller, instanceDetail);

/** `POST /instances`: 200 (not 202) with the new instance in BUILD. */
const create: ProjectRoute = async (event, caller) => {
  const request = validate(CreateInstanceRequest, parsedBody(event)).instance;
  const item = await createInstance(caller.projectId, request, caller.isAdmin);
  return json(200, { instance: instanceDetail(item, ctx(event, caller)) });
};

const show: ProjectRoute = async (event, caller) => {
  const item = await timed(event, 'get', () => loadInstance(caller.projectId, instanceId(event)));
  const view = instanceDetail(item, ctx(event, caller));
  if (item.configuration_id) {
    const group = await getConfiguration(caller.projectId, item.configuration_id).catch(() => undefined);
    if (group) view.configuration = configurationRef(group, baseUrl(event));
  }
  return json(200, { instance: view });
};

/** `GET /instances/{id}/configuration`: the values the instance's engine runs with. */
const configuration: ProjectRoute = async (event, caller) => {
  const item = await loadReadyInstance(caller.projectId, instanceId(event), { redis: 'root' });
  const body = { instance: { configuration: await effectiveConfiguration(item) } };
  return json(200, body satisfies InstanceConfigurationResponse);
};

/** `PUT` and `PATCH /instances/{id}`: 202 without a body. */
const update: ProjectRoute = async (event, caller) => {
  const request = validate(UpdateInstanceRequest, parsedBody(event)).instance;
  await updateInstanceAttributes(caller.projectId, instanceId(event), request);
  return accepted();
};

const remove: ProjectRoute = async (event, caller) => {
  await deleteInstance(caller.projectId, instanceId(event));
  return accepted();
};

/** `POST /instances/{id}/action`: the first recognised key picks the action. */
const action: ProjectRoute = async (event, caller) => {
  await instanceAction(caller, instanceId(event), validate(ActionRequest, parsedBody(event)));
  return accepted();
};

const i = '/v1.0/{project_id}/instances';
export const handler = projectHandler(
  byRouteKey({
    [`GET ${i}`]: list,
    [`GET ${i}/detail`]: detail,
    [`POST ${i}`]: create,
    [`GET ${i}/{instance_id}`]: show,
    [`GET ${i}/{instance_id}/configuration`]: configuration,
    [`PUT ${i}/{instance_id}`]: update,
    [`PATCH ${i}/{instance_id}`]: update,
    [`DELETE ${i}/{instance_id}`]: remove,
    [`POST ${i}/{instance_id}/action`]: action,
  }),
  { readOnly: [`GET ${i}`, `GET ${i}/detail`, `GET ${i}/{instance_id}`] },
);
