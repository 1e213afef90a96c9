import { getConfiguration } from '#lib/configurations/repository';
import { effectiveConfiguration } from '#lib/configurations/service';
import { configurationRef } from '#lib/configurations/views';
import { loadReadyInstance } from '#lib/databases/instance';
import { BadRequest, NotImplemented } from '#lib/errors';
import type { Caller } from '#lib/http/auth';
import { parsedBody } from '#lib/http/body';
import { projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, baseUrl, json } from '#lib/http/response';
import { createInstance } from '#lib/instances/create';
import {
  deleteInstance,
  loadInstance,
  resetStatus,
  restartInstance,
  updateInstanceAttributes,
} from '#lib/instances/operations';
import { listInstances } from '#lib/instances/repository';
import { ActionRequest, CreateInstanceRequest, UpdateInstanceRequest } from '#lib/instances/schemas';
import { instanceDetail, instanceSummary } from '#lib/instances/views';
import { validate } from '#lib/validation';

const instanceId = (event: HttpEvent) => event.pathParameters?.instance_id ?? '';
const ctx = (event: HttpEvent, caller: Caller) => ({ base: baseUrl(event), isAdmin: caller.isAdmin });

async function listPage(event: HttpEvent, caller: Caller, view: typeof instanceSummary) {
  const result = await listInstances(caller.projectId, pageOf(event));
  return pageResponse(event, 'instances', {
    ...result,
    items: result.items.map((i) => view(i, ctx(event, caller))),
  });
}

/** `GET /instances`: Trove's InstanceView per item, paginated by id. */
export const list = projectHandler((event, caller) => listPage(event, caller, instanceSummary));

/** `GET /instances/detail`: the same list with detail fields. */
export const detail = projectHandler((event, caller) => listPage(event, caller, instanceDetail));

/** `POST /instances`: 200 (not 202) with the new instance in BUILD. */
export const create = projectHandler(async (event, caller) => {
  const request = validate(CreateInstanceRequest, parsedBody(event)).instance;
  const item = await createInstance(caller.projectId, request);
  return json(200, { instance: instanceDetail(item, ctx(event, caller)) });
});

export const show = projectHandler(async (event, caller) => {
  const item = await loadInstance(caller.projectId, instanceId(event));
  const view = instanceDetail(item, ctx(event, caller));
  if (item.configuration_id) {
    const group = await getConfiguration(caller.projectId, item.configuration_id).catch(() => undefined);
    if (group) view.configuration = configurationRef(group, baseUrl(event));
  }
  return json(200, { instance: view });
});

/** `GET /instances/{id}/configuration`: the values the instance's engine runs with. */
export const configuration = projectHandler(async (event, caller) => {
  const item = await loadReadyInstance(caller.projectId, instanceId(event), { redis: 'root' });
  return json(200, { instance: { configuration: await effectiveConfiguration(item) } });
});

/** `PUT` and `PATCH /instances/{id}`: 202 without a body. */
export const update = projectHandler(async (event, caller) => {
  const request = validate(UpdateInstanceRequest, parsedBody(event)).instance;
  await updateInstanceAttributes(caller.projectId, instanceId(event), request);
  return accepted();
});

export const remove = projectHandler(async (event, caller) => {
  await deleteInstance(caller.projectId, instanceId(event));
  return accepted();
});

/** `POST /instances/{id}/action`: the first recognised key picks the action. */
export const action = projectHandler(async (event, caller) => {
  const body = validate(ActionRequest, parsedBody(event));
  const id = instanceId(event);
  if (body.restart !== undefined) await restartInstance(caller.projectId, id);
  else if (body.reset_status !== undefined) await resetStatus(caller.projectId, id, caller.isAdmin);
  else if (
    body.resize !== undefined ||
    body.promote_to_replica_source !== undefined ||
    body.eject_replica_source !== undefined
  ) {
    await loadInstance(caller.projectId, id);
    throw new NotImplemented('This action is not supported yet.');
  } else throw new BadRequest('Invalid request body: no recognised action.');
  return accepted();
});
