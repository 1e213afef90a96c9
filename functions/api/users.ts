import { loadReadyInstance } from '#lib/databases/instance';
import {
  checkDatabaseName,
  checkHost,
  checkPassword,
  checkUserName,
  parseUserRef,
} from '#lib/databases/names';
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
  pageByName,
  revokeAccess,
  updateUser,
} from '#lib/databases/service';
import { parsedBody } from '#lib/http/body';
import type { ProjectRoute } from '#lib/http/handler';
import { nextLinks, pageOf } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, baseUrl, json } from '#lib/http/response';
import { validate } from '#lib/http/validation';

// Users are addressed as `name` or `name@host` (URL-encoded); the host defaults to '%'.
const ready = (projectId: string, event: HttpEvent) =>
  loadReadyInstance(projectId, event.pathParameters?.instance_id ?? '', { redis: 'unsupported' });
const userRef = (manager: string, event: HttpEvent) =>
  parseUserRef(manager, event.pathParameters?.user ?? '');

/** `GET /users`: paginated by `name@host`. */
export const list: ProjectRoute = async (event, caller) => {
  const page = pageOf(event);
  const item = await ready(caller.projectId, event);
  const result = pageByName(await listUsers(item), (u) => `${u.name}@${u.host}`, page);
  const body: Record<string, unknown> = { users: result.items };
  if (result.nextMarker)
    body.links = nextLinks(baseUrl(event), event, event.queryStringParameters?.limit, result.nextMarker);
  return json(200, body);
};

export const create: ProjectRoute = async (event, caller) => {
  const { users } = validate(CreateUsersRequest, parsedBody(event));
  const item = await ready(caller.projectId, event);
  const m = item.datastore.manager;
  const checked = users.map((u) => ({
    name: checkUserName(m, u.name),
    password: checkPassword(u.password),
    host: checkHost(u.host),
    databases: (u.databases ?? []).map((d) => ({ name: checkDatabaseName(m, d.name) })),
  }));
  await createUsers(item, checked);
  return accepted();
};

export const show: ProjectRoute = async (event, caller) => {
  const item = await ready(caller.projectId, event);
  const { name, host } = userRef(item.datastore.manager, event);
  return json(200, { user: await getUser(item, name, host) });
};

export const update: ProjectRoute = async (event, caller) => {
  const { user } = validate(UpdateUserRequest, parsedBody(event));
  const item = await ready(caller.projectId, event);
  const m = item.datastore.manager;
  const { name, host } = userRef(m, event);
  await updateUser(item, name, host, {
    ...(user.name !== undefined ? { name: checkUserName(m, user.name) } : {}),
    ...(user.host !== undefined ? { host: checkHost(user.host) } : {}),
    ...(user.password !== undefined ? { password: checkPassword(user.password) } : {}),
  });
  return accepted();
};

/** `PUT /users`: new passwords for several users at once. */
export const passwords: ProjectRoute = async (event, caller) => {
  const { users } = validate(ChangePasswordsRequest, parsedBody(event));
  const item = await ready(caller.projectId, event);
  const m = item.datastore.manager;
  await changePasswords(
    item,
    users.map((u) => ({
      name: checkUserName(m, u.name),
      host: checkHost(u.host),
      password: checkPassword(u.password),
    })),
  );
  return accepted();
};

export const remove: ProjectRoute = async (event, caller) => {
  const item = await ready(caller.projectId, event);
  const { name, host } = userRef(item.datastore.manager, event);
  await deleteUser(item, name, host);
  return accepted();
};

export const access: ProjectRoute = async (event, caller) => {
  const item = await ready(caller.projectId, event);
  const { name, host } = userRef(item.datastore.manager, event);
  return json(200, { databases: await listAccess(item, name, host) });
};

export const grant: ProjectRoute = async (event, caller) => {
  const { databases } = validate(GrantAccessRequest, parsedBody(event));
  const item = await ready(caller.projectId, event);
  const m = item.datastore.manager;
  const { name, host } = userRef(m, event);
  await grantAccess(
    item,
    name,
    host,
    databases.map((d) => checkDatabaseName(m, d.name)),
  );
  return accepted();
};

export const revoke: ProjectRoute = async (event, caller) => {
  const item = await ready(caller.projectId, event);
  const m = item.datastore.manager;
  const { name, host } = userRef(m, event);
  await revokeAccess(item, name, host, checkDatabaseName(m, event.pathParameters?.database ?? ''));
  return accepted();
};
