import { loadReadyInstance } from '#lib/databases/instance';
import { checkDatabaseName } from '#lib/databases/names';
import { CreateDatabasesRequest } from '#lib/databases/schemas';
import { createDatabases, deleteDatabase, listDatabases, pageByName } from '#lib/databases/service';
import { NotImplemented } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import type { ProjectRoute } from '#lib/http/handler';
import { nextLinks, pageOf } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, baseUrl, json } from '#lib/http/response';
import { validate } from '#lib/http/validation';

const id = (event: HttpEvent) => event.pathParameters?.instance_id ?? '';
const ready = (projectId: string, event: HttpEvent) =>
  loadReadyInstance(projectId, id(event), { redis: 'unsupported' });

/** `GET /instances/{id}/databases`: paginated by name. */
export const list: ProjectRoute = async (event, caller) => {
  const page = pageOf(event);
  const item = await ready(caller.projectId, event);
  const result = pageByName(await listDatabases(item), (d) => d.name, page);
  const body: Record<string, unknown> = { databases: result.items };
  if (result.nextMarker)
    body.links = nextLinks(baseUrl(event), event, event.queryStringParameters?.limit, result.nextMarker);
  return json(200, body);
};

/** `POST /instances/{id}/databases`: several at once; every name is checked before any is made. */
export const create: ProjectRoute = async (event, caller) => {
  const { databases } = validate(CreateDatabasesRequest, parsedBody(event));
  const item = await ready(caller.projectId, event);
  for (const db of databases) checkDatabaseName(item.datastore.manager, db.name);
  await createDatabases(item, databases);
  return accepted();
};

export const remove: ProjectRoute = async (event, caller) => {
  const item = await ready(caller.projectId, event);
  const name = checkDatabaseName(item.datastore.manager, event.pathParameters?.database ?? '');
  await deleteDatabase(item, name);
  return accepted();
};

/** Trove has no single-database view. */
export const show: ProjectRoute = async () => {
  throw new NotImplemented('Showing a single database is not supported.');
};
