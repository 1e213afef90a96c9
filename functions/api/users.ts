import { loadReadyInstance } from '#lib/databases/instance';
import {
  ChangePasswordsRequest,
  CreateUsersRequest,
  GrantAccessRequest,
  UpdateUserRequest,
} from '#lib/databases/schemas';
import {
  changePasswords,
  createUsers,
  deleteUser,
  getUser,
  grantAccess,
  listAccess,
  listUsers,
  revokeAccess,
  updateUser,
} from '#lib/databases/service';
import { parsedBody } from '#lib/http/body';
import type { ProjectRoute } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, json } from '#lib/http/response';
import { validate } from '#lib/validation';

// Users are addressed as `name` or `name@host` (URL-encoded); the host defaults to '%'.
const ready = (projectId: string, event: HttpEvent) =>
  loadReadyInstance(projectId, event.pathParameters?.instance_id ?? '', { redis: 'unsupported' });
const ref = (event: HttpEvent) => event.pathParameters?.user ?? '';

/** `GET /users`: paginated by `name@host`. */
export const list: ProjectRoute = async (event, caller) => {
  const page = pageOf(event);
  return pageResponse(event, 'users', await listUsers(await ready(caller.projectId, event), page));
};

export const create: ProjectRoute = async (event, caller) => {
  const request = validate(CreateUsersRequest, parsedBody(event));
  await createUsers(await ready(caller.projectId, event), request);
  return accepted();
};

export const show: ProjectRoute = async (event, caller) => {
  return json(200, { user: await getUser(await ready(caller.projectId, event), ref(event)) });
};

export const update: ProjectRoute = async (event, caller) => {
  const request = validate(UpdateUserRequest, parsedBody(event));
  await updateUser(await ready(caller.projectId, event), ref(event), request);
  return accepted();
};

/** `PUT /users`: new passwords for several users at once. */
export const passwords: ProjectRoute = async (event, caller) => {
  const request = validate(ChangePasswordsRequest, parsedBody(event));
  await changePasswords(await ready(caller.projectId, event), request);
  return accepted();
};

export const remove: ProjectRoute = async (event, caller) => {
  await deleteUser(await ready(caller.projectId, event), ref(event));
  return accepted();
};

export const access: ProjectRoute = async (event, caller) => {
  return json(200, { databases: await listAccess(await ready(caller.projectId, event), ref(event)) });
};

export const grant: ProjectRoute = async (event, caller) => {
  const request = validate(GrantAccessRequest, parsedBody(event));
  await grantAccess(await ready(caller.projectId, event), ref(event), request);
  return accepted();
};

export const revoke: ProjectRoute = async (event, caller) => {
  const item = await ready(caller.projectId, event);
  await revokeAccess(item, ref(event), event.pathParameters?.database ?? '');
  return accepted();
};
