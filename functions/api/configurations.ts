import { getConfiguration, instancesUsing, listConfigurations } from '#lib/configurations/repository';
import {
  CreateConfigurationRequest,
  PatchConfigurationRequest,
  PutConfigurationRequest,
} from '#lib/configurations/schemas';
import { createConfiguration, deleteConfiguration, updateConfiguration } from '#lib/configurations/service';
import { configurationDetail, configurationSummary } from '#lib/configurations/views';
import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { validate } from '#lib/validation';

const id = (event: HttpEvent) => event.pathParameters?.configuration_id ?? '';

const list: ProjectRoute = async (event, caller) => {
  const result = await listConfigurations(caller.projectId, pageOf(event));
  return pageResponse(event, 'configurations', { ...result, items: result.items.map(configurationSummary) });
};

/** `POST /configurations`: 200 with the detailed view, as Trove. */
const create: ProjectRoute = async (event, caller) => {
  const { configuration } = validate(CreateConfigurationRequest, parsedBody(event));
  const item = await createConfiguration(caller.projectId, configuration);
  return json(200, { configuration: configurationDetail(item, 0) });
};

const show: ProjectRoute = async (event, caller) => {
  const item = await getConfiguration(caller.projectId, id(event));
  const users = await instancesUsing(caller.projectId, item.id);
  return json(200, { configuration: configurationDetail(item, users.length) });
};

const instances: ProjectRoute = async (event, caller) => {
  const item = await getConfiguration(caller.projectId, id(event));
  return json(200, { instances: await instancesUsing(caller.projectId, item.id) });
};

/** `PATCH`: merges values; 200 with an empty body. */
const patch: ProjectRoute = async (event, caller) => {
  const { configuration } = validate(PatchConfigurationRequest, parsedBody(event));
  await updateConfiguration(caller.projectId, id(event), configuration, 'merge');
  return { statusCode: 200, body: '' };
};

/** `PUT`: replaces all values (and optionally the name and description); 202. */
const replace: ProjectRoute = async (event, caller) => {
  const { configuration } = validate(PutConfigurationRequest, parsedBody(event));
  await updateConfiguration(caller.projectId, id(event), configuration, 'replace');
  return accepted();
};

const remove: ProjectRoute = async (event, caller) => {
  await deleteConfiguration(caller.projectId, id(event));
  return accepted();
};

const base = 'GET /v1.0/{project_id}/configurations';
export const handler = projectHandler(
  byRouteKey({
    [base]: list,
    'POST /v1.0/{project_id}/configurations': create,
    [`${base}/{configuration_id}`]: show,
    [`${base}/{configuration_id}/instances`]: instances,
    'PATCH /v1.0/{project_id}/configurations/{configuration_id}': patch,
    'PUT /v1.0/{project_id}/configurations/{configuration_id}': replace,
    'DELETE /v1.0/{project_id}/configurations/{configuration_id}': remove,
  }),
);
