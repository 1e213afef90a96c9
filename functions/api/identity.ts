import { BadRequest } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import { type PublicRoute, publicHandler } from '#lib/http/handler';
import type { HttpEvent, HttpResult } from '#lib/http/response';
import { baseUrl, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { getProject, getUser, listProjects } from '#lib/identity/directory';
import {
  AUTH_REQUIRED,
  AuthFailure,
  authenticate,
  catalog,
  keystoneError,
  projectView,
  userView,
} from '#lib/identity/keystone';
import { revokeToken } from '#lib/identity/revocations';
import { AuthRequest, type KeystoneVersionResponse, type TokenResponse } from '#lib/identity/schemas';
import { checkToken, isAdmin, type VerifiedToken } from '#lib/identity/tokens';

/** `GET /v3`: the version document the openstack CLI reads before it authenticates. */
const version: PublicRoute = async (event) =>
  json(200, {
    version: {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${baseUrl(event)}/v3/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    },
  } satisfies KeystoneVersionResponse);

/** `POST /v3/auth/tokens`: password method, project scope; the token comes back in X-Subject-Token. */
const issue: PublicRoute = async (event) => {
  const request = AuthRequest.safeParse(parsedBody(event));
  if (!request.success)
    return json(400, keystoneError(400, 'Expecting to find auth.identity in the request.'));
  try {
    const { token, body } = await authenticate(request.data, baseUrl(event));
    return json(201, body, { 'x-subject-token': token });
  } catch (err) {
    if (err instanceof AuthFailure) return json(err.status, keystoneError(err.status, err.message));
    throw err;
  }
};

/** `GET /v3/auth/tokens`: validates the X-Subject-Token for a caller holding a valid X-Auth-Token. */
const validate: PublicRoute = async (event: HttpEvent): Promise<HttpResult> => {
  const callerToken = event.headers?.['x-auth-token'];
  const subject = event.headers?.['x-subject-token'];
  if (!subject) throw new BadRequest('X-Subject-Token is required.');
  const caller = callerToken ? await checkToken(callerToken) : undefined;
  if (!caller?.ok) return json(401, keystoneError(401, AUTH_REQUIRED));
  const checked = await checkToken(subject);
  if (!checked.ok) return json(404, keystoneError(404, 'Could not find token.'));
  const c = checked.claims;
  return json(
    200,
    {
      token: {
        methods: ['password'],
        user: { id: c.user_id, name: c.user_name, domain: { id: c.domain_id } },
        project: { id: c.project_id, name: c.project_name, domain: { id: c.domain_id } },
        roles: c.roles.map((name) => ({ id: name, name })),
        catalog: catalog(baseUrl(event), c.project_id),
      },
    } satisfies TokenResponse,
    { 'x-subject-token': subject },
  );
};

/** The caller's own token (X-Auth-Token), checked as on every route; undefined → 401. */
async function callerOf(event: HttpEvent): Promise<VerifiedToken | undefined> {
  const token = event.headers?.['x-auth-token'];
  const checked = token ? await checkToken(token) : undefined;
  return checked?.ok ? checked : undefined;
}

const unauthorized = () => json(401, keystoneError(401, AUTH_REQUIRED));
const forbidden = () =>
  json(403, keystoneError(403, 'You are not authorized to perform the requested action.'));

/**
 * `DELETE /v3/auth/tokens`: revokes the X-Subject-Token (Keystone's policy: an admin, or the
 * token's own user). From then on it is refused everywhere (lib/identity/revocations.ts).
 */
const revoke: PublicRoute = async (event: HttpEvent): Promise<HttpResult> => {
  const subject = event.headers?.['x-subject-token'];
  if (!subject) throw new BadRequest('X-Subject-Token is required.');
  const caller = await callerOf(event);
  if (!caller) return unauthorized();
  const target = await checkToken(subject);
  if (!target.ok) return json(404, keystoneError(404, 'Could not find token.'));
  if (!isAdmin(caller.claims) && caller.claims.user_id !== target.claims.user_id) return forbidden();
  await revokeToken(target.jti, target.exp);
  return { statusCode: 204, headers: {}, body: '' };
};

/** `GET /v3/projects[?name=]`: admins only, as Keystone's identity:list_projects. */
const projects: PublicRoute = async (event: HttpEvent): Promise<HttpResult> => {
  const caller = await callerOf(event);
  if (!caller) return unauthorized();
  if (!isAdmin(caller.claims)) return forbidden();
  const found = await listProjects(event.queryStringParameters?.name);
  const base = baseUrl(event);
  return json(200, {
    projects: found.map((p) => projectView(p, base)),
    links: { self: `${base}/v3/projects`, previous: null, next: null },
  });
};

/** `GET /v3/projects/{project_id}`: an admin, or a token scoped to that project. */
const project: PublicRoute = async (event: HttpEvent): Promise<HttpResult> => {
  const caller = await callerOf(event);
  if (!caller) return unauthorized();
  const id = event.pathParameters?.project_id ?? '';
  if (!isAdmin(caller.claims) && caller.claims.project_id !== id) return forbidden();
  const found = await getProject(id);
  if (!found) return json(404, keystoneError(404, `Could not find project: ${id}.`));
  return json(200, { project: projectView(found, baseUrl(event)) });
};

/** `GET /v3/users/{user_id}`: an admin, or the user itself. */
const user: PublicRoute = async (event: HttpEvent): Promise<HttpResult> => {
  const caller = await callerOf(event);
  if (!caller) return unauthorized();
  const id = event.pathParameters?.user_id ?? '';
  if (!isAdmin(caller.claims) && caller.claims.user_id !== id) return forbidden();
  const found = await getUser(id);
  if (!found) return json(404, keystoneError(404, `Could not find user: ${id}.`));
  return json(200, { user: userView(found, baseUrl(event)) });
};

const tokens = '/v3/auth/tokens';
export const handler = publicHandler(
  byRouteKey({
    'GET /v3': version,
    [`POST ${tokens}`]: issue,
    [`GET ${tokens}`]: validate,
    [`DELETE ${tokens}`]: revoke,
    'GET /v3/projects': projects,
    'GET /v3/projects/{project_id}': project,
    'GET /v3/users/{user_id}': user,
  }),
);
