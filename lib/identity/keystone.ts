import { z } from 'zod';
import { config } from '../config.ts';
import { findDomainId, findProject, loadDirectory, rolesOn } from './directory.ts';
import { verifyPassword } from './passwords.ts';
import { issueToken, type TokenClaims } from './tokens.ts';

// Keystone v3's password method with project scope: the subset keystoneauth1 and the
// openstack CLI send (TROVE_API.md §13.1).
const NameOrId = z.object({ id: z.string().optional(), name: z.string().optional() });
export const AuthRequest = z.object({
  auth: z.object({
    identity: z.object({
      methods: z.array(z.string()).min(1),
      password: z
        .object({
          user: z.object({
            id: z.string().optional(),
            name: z.string().optional(),
            password: z.string(),
            domain: NameOrId.optional(),
          }),
        })
        .optional(),
    }),
    scope: z
      .object({
        project: z.object({
          id: z.string().optional(),
          name: z.string().optional(),
          domain: NameOrId.optional(),
        }),
      })
      .optional(),
  }),
});
export type AuthRequest = z.infer<typeof AuthRequest>;

export class AuthFailure extends Error {
  constructor(
    readonly status: 400 | 401,
    message: string,
  ) {
    super(message);
  }
}

/** Keystone's own error body (not Trove's): keystoneauth reads `error.message`. */
export function keystoneError(status: number, message: string) {
  const title = status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Bad Request';
  return { error: { code: status, message, title } };
}

const AUTH_REQUIRED = 'The request you have made requires authentication.';

export async function authenticate(
  request: AuthRequest,
  baseUrl: string,
): Promise<{ claims: TokenClaims; token: string; body: object }> {
  const { identity, scope } = request.auth;
  if (!identity.methods.includes('password') || !identity.password) {
    throw new AuthFailure(401, 'Only the password authentication method is supported.');
  }
  const dir = await loadDirectory();
  const u = identity.password.user;
  const domainId = u.domain ? findDomainId(dir, u.domain) : undefined;
  const user = dir.users.find((c) => (u.id ? c.id === u.id : c.name === u.name && c.domain_id === domainId));
  // Hash even when the user is unknown, so timing does not reveal which names exist.
  const ok = await verifyPassword(u.password, user?.password_hash ?? dir.users[0]?.password_hash ?? '');
  if (!user || !ok) throw new AuthFailure(401, AUTH_REQUIRED);

  const ref = scope?.project ?? { id: user.default_project };
  const project = findProject(dir, {
    id: ref.id,
    name: 'name' in ref ? ref.name : undefined,
    domainId: 'domain' in ref ? ref.domain?.id : undefined,
    domainName: 'domain' in ref ? ref.domain?.name : undefined,
  });
  const roles = project ? rolesOn(user, project.id) : [];
  if (!project || roles.length === 0) throw new AuthFailure(401, AUTH_REQUIRED);

  const claims: TokenClaims = {
    user_id: user.id,
    user_name: user.name,
    domain_id: user.domain_id,
    project_id: project.id,
    project_name: project.name,
    roles,
  };
  const issued = await issueToken(claims, config.tokenTtlSeconds);
  const domainOf = (id: string) => ({ id, name: dir.domains.find((d) => d.id === id)?.name ?? id });
  return {
    claims,
    token: issued.token,
    body: {
      token: {
        methods: ['password'],
        expires_at: keystoneTime(issued.expiresAt),
        issued_at: keystoneTime(issued.issuedAt),
        audit_ids: [],
        user: { id: user.id, name: user.name, domain: domainOf(user.domain_id), password_expires_at: null },
        project: { id: project.id, name: project.name, domain: domainOf(project.domain_id) },
        roles: roles.map((name) => ({ id: name, name })),
        is_domain: false,
        catalog: catalog(baseUrl, project.id),
      },
    },
  };
}

export function catalog(baseUrl: string, projectId: string) {
  const endpoint = (id: string, url: string) => ({
    id,
    interface: 'public',
    region: config.regionName,
    region_id: config.regionName,
    url,
  });
  return [
    {
      type: 'database',
      name: 'trove',
      id: 'trove',
      endpoints: [endpoint('trove-public', `${baseUrl}/v1.0/${projectId}`)],
    },
    {
      type: 'identity',
      name: 'keystone',
      id: 'keystone',
      endpoints: [endpoint('keystone-public', `${baseUrl}/v3`)],
    },
  ];
}

function keystoneTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
