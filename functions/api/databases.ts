import { loadReadyInstance } from '#lib/databases/instance';
import { CreateDatabasesRequest } from '#lib/databases/schemas';
import { createDatabases, deleteDatabase, listDatabases } from '#lib/databases/service';
import { NotImplemented } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import type { ProjectRoute } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted } from '#lib/http/response';
import { validate } from '#lib/validation';

const ready = (projectId: string, event: HttpEvent) =>
  loadReadyInstance(projectId, event.pathParameters?.instance_id ?? '', { redis: 'unsupported' });

/** `GET /instances/{id}/databases`: paginated by name. */
export const list: ProjectRoute = async (event, caller) => {
  const page = pageOf(event);
  return pageResponse(event, 'databases', await listDatabases(await ready(caller.projectId, event), page));
};

export const create: ProjectRoute = async (event, caller) => {
  const request = validate(CreateDatabasesRequest, parsedBody(event));
  await createDatabases(await ready(caller.projectId, event), request);
  return accepted();
};

export const remove: ProjectRoute = async (event, caller) => {
  await deleteDatabase(await ready(caller.projectId, event), event.pathParameters?.database ?? '');
  return accepted();
};

/** Trove has no single-database view. */
export const show: ProjectRoute = async () => {
  throw new NotImplemented('Showing a single database is not supported.');
};
