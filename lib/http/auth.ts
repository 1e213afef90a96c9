import { Forbidden, Unauthorized } from '../errors.ts';
import { checkToken, isAdmin, type TokenClaims } from '../identity/tokens.ts';
import type { HttpEvent } from './response.ts';

export interface Caller {
  claims: TokenClaims;
  /** The project in the URL, which every item the request touches is scoped to. */
  projectId: string;
  isAdmin: boolean;
}

/**
 * keystonemiddleware + Trove's tenant check: a valid token is required (401 otherwise), and the
 * project in the path must be the token's own unless the caller is an admin (403). A revoked
 * token is refused like an invalid one (lib/identity/revocations.ts).
 */
export async function authenticateCaller(event: HttpEvent): Promise<Caller> {
  const claims = await authenticatedClaims(event);
  const projectId = event.pathParameters?.project_id ?? '';
  const admin = isAdmin(claims);
  if (projectId !== claims.project_id && !admin) {
    throw new Forbidden(`The token's project does not match the project ${projectId} in the request.`);
  }
  return { claims, projectId, isAdmin: admin };
}

/** keystonemiddleware alone: the token's claims, or 401. */
export async function authenticatedClaims(event: HttpEvent): Promise<TokenClaims> {
  const token = event.headers?.['x-auth-token'];
  if (!token) throw new Unauthorized();
  const check = await checkToken(token);
  if (!check.ok) {
    throw new Unauthorized(
      check.reason === 'expired'
        ? 'The token has expired.'
        : check.reason === 'revoked'
          ? 'The token has been revoked.'
          : 'The token is not valid.',
    );
  }
  return check.claims;
}

/**
 * A path under `/v1.0` that no route matched, as Trove's pipeline answers it: keystonemiddleware
 * first (401), then its TenantBasedAuth, which wants `/<project>/...` after the version and the
 * token's own project there (403: `GET /v1.0/` is one of these), and only then the router's 404.
 * Admins reach other projects' paths here as on every route.
 */
export async function unroutedVersionPath(event: HttpEvent, rawPath: string): Promise<void> {
  const claims = await authenticatedClaims(event);
  const scoped = /^\/v1\.0\/([^/]*)\/.*$/.exec(rawPath);
  const project = scoped?.[1];
  if (project === undefined || (project !== claims.project_id && !isAdmin(claims))) {
    throw new Forbidden(`User with tenant id ${claims.project_id} cannot access this resource.`);
  }
}
