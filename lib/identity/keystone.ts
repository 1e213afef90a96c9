import { randomBytes } from 'node:crypto';
import { config } from '../config.ts';
import {
  domainName,
  findDomainId,
  findProject,
  findUser,
  type Project,
  rolesOn,
  type User,
} from './directory.ts';
import { lockState, recordFailure, resetFailures } from './lockout.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import type { AuthRequest, ProjectView, TokenResponse, UserView } from './schemas.ts';
import { issueToken, type TokenClaims } from './tokens.ts';

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
  const title =
    status === 401
      ? 'Unauthorized'
      : status === 403
        ? 'Forbidden'
        : status === 404
          ? 'Not Found'
          : 'Bad Request';
  return { error: { code: status, message, title } };
}

export const AUTH_REQUIRED = 'The request you have made requires authentication.';

/** Hashing a password nobody has costs what checking a real one does. */
let decoy: Promise<string> | undefined;

export async function authenticate(
  request: AuthRequest,
  baseUrl: string,
  now = Date.now(),
): Promise<{ claims: TokenClaims; token: string; body: TokenResponse }> {
  const { identity, scope } = request.auth;
  if (!identity.methods.includes('password') || !identity.password) {
    throw new AuthFailure(401, 'Only the password authentication method is supported.');
  }
  const u = identity.password.user;
  const user = await findUser({
    id: u.id,
    name: u.name,
    // A name without a domain (python-mistralclient's login, as troveclient builds it, sends
    // none) can only mean the one domain there is.
    domainId: u.domain ? findDomainId(u.domain) : 'default',
  });
  // Hash even when the user is unknown or locked, so timing does not reveal which names exist.
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  const ok = await verifyPassword(u.password, user?.password_hash ?? (await decoy));
  if (!user) throw new AuthFailure(401, AUTH_REQUIRED);
  const nowSeconds = Math.floor(now / 1000);
  const lock = lockState(user, nowSeconds);
  if (lock === 'locked') throw new AuthFailure(401, AUTH_REQUIRED);
  if (!ok) {
    await recordFailure(user.id, lock === 'lapsed', nowSeconds);
    throw new AuthFailure(401, AUTH_REQUIRED);
  }
  if (user.failed_auth_count) await resetFailures(user.id);

  const ref = scope?.project ?? { id: user.default_project_id };
  const domain = 'domain' in ref ? ref.domain : undefined;
  const project = await findProject({
    id: ref.id,
    name: 'name' in ref ? ref.name : undefined,
    // No domain: the one there is, as for the user.
    domainId: domain ? domain.id : 'default',
    domainName: domain?.name,
  });
  const roles = project ? await rolesOn(user.id, project.id) : [];
  if (!project || roles.length === 0) throw new AuthFailure(401, AUTH_REQUIRED);

  const claims: TokenClaims = {
    user_id: user.id,
    user_name: user.name,
    domain_id: user.domain_id,
    project_id: project.id,
    project_name: project.name,
    roles,
  };
  const issued = await issueToken(claims, config.tokenTtlSeconds, new Date(now));
  const domainOf = (id: string) => ({ id, name: domainName(id) });
  return {
    claims,
    token: issued.token,
    body: {
      token: {
        methods: ['password'],
        expires_at: keystoneTime(issued.expiresAt),
        issued_at: keystoneTime(issued.issuedAt),
        audit_ids: [Buffer.from(issued.jti.replaceAll('-', ''), 'hex').toString('base64url')],
        user: { id: user.id, name: user.name, domain: domainOf(user.domain_id), password_expires_at: null },
        project: { id: project.id, name: project.name, domain: domainOf(project.domain_id) },
        roles: roles.map((name) => ({ id: name, name })),
        is_domain: false,
        catalog: catalog(baseUrl, project.id),
      },
    },
  };
}

/** Keystone's project and user views (GET /v3/projects, /v3/users/{id}). */
export function projectView(p: Project, baseUrl: string): ProjectView {
  return {
    id: p.id,
    name: p.name,
    domain_id: p.domain_id,
    description: '',
    enabled: true,
    parent_id: p.domain_id,
    is_domain: false,
    tags: [],
    options: {},
    links: { self: `${baseUrl}/v3/projects/${p.id}` },
  };
}

export function userView(u: User, baseUrl: string): UserView {
  return {
    id: u.id,
    name: u.name,
    domain_id: u.domain_id,
    default_project_id: u.default_project_id,
    enabled: true,
    password_expires_at: null,
    options: {},
    links: { self: `${baseUrl}/v3/users/${u.id}` },
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
      // The read-only Swift subset that python-troveclient reads published guest logs through.
      type: 'object-store',
      name: 'swift',
      id: 'swift',
      endpoints: [endpoint('swift-public', `${baseUrl}/v1/AUTH_${projectId}`)],
    },
    {
      // The Mistral v2 subset python-troveclient's backup schedules use (lib/mistral/).
      type: 'workflowv2',
      name: 'mistral',
      id: 'mistral',
      endpoints: [endpoint('mistral-public', `${baseUrl}/v2`)],
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
