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
  const projectId = event.pathParameters?.project_id ?? '';
  const admin = isAdmin(check.claims);
  if (projectId !== check.claims.project_id && !admin) {
    throw new Forbidden(`The token's project does not match the project ${projectId} in the request.`);
  }
  return { claims: check.claims, projectId, isAdmin: admin };
}
