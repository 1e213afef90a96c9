import { BadRequest } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import { publicHandler } from '#lib/http/handler';
import type { HttpEvent, HttpResult } from '#lib/http/response';
import { baseUrl, json } from '#lib/http/response';
import { AuthFailure, AuthRequest, authenticate, catalog, keystoneError } from '#lib/identity/keystone';
import { verifyToken } from '#lib/identity/tokens';

/** `GET /v3`: the version document the openstack CLI reads before it authenticates. */
export const version = publicHandler(async (event) =>
  json(200, {
    version: {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${baseUrl(event)}/v3/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    },
  }),
);

/** `POST /v3/auth/tokens`: password method, project scope; the token comes back in X-Subject-Token. */
export const issue = publicHandler(async (event) => {
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
});

/** `GET /v3/auth/tokens`: validates the X-Subject-Token for a caller holding a valid X-Auth-Token. */
export const validate = publicHandler(async (event: HttpEvent): Promise<HttpResult> => {
  const callerToken = event.headers?.['x-auth-token'];
  const subject = event.headers?.['x-subject-token'];
  if (!subject) throw new BadRequest('X-Subject-Token is required.');
  const caller = callerToken ? await verifyToken(callerToken) : undefined;
  if (!caller?.ok) return json(401, keystoneError(401, 'The request you have made requires authentication.'));
  const checked = await verifyToken(subject);
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
    },
    { 'x-subject-token': subject },
  );
});
