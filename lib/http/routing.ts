import { NotFound, Unauthorized } from '../errors.ts';
import type { Caller } from './auth.ts';
import type { ProjectRoute } from './handler.ts';
import type { HttpEvent, HttpResult } from './response.ts';

// One function serves several routes of a resource and picks by API Gateway's routeKey
// ("GET /v1.0/{project_id}/flavors"): every function costs the stack about seven resources
// (function, role, log group, version, integration, permission ...), and CloudFormation
// allows 500, fewer than Trove's routes would take one function each.
export function byRouteKey<A extends unknown[]>(
  routes: Record<string, (event: HttpEvent, ...rest: A) => Promise<HttpResult>>,
): (event: HttpEvent, ...rest: A) => Promise<HttpResult> {
  return (event, ...rest) => {
    const route = routes[event.routeKey];
    if (!route) throw new NotFound('The resource could not be found.');
    return route(event, ...rest);
  };
}

/** Trove's `admin_context`: a non-admin gets 401 (Forbidden maps to 401 in Trove). */
export function requireAdmin(caller: Caller): void {
  if (!caller.isAdmin) throw new Unauthorized('User does not have admin privileges.');
}

export function adminOnly(route: ProjectRoute): ProjectRoute {
  return (event, caller, context) => {
    requireAdmin(caller);
    return route(event, caller, context);
  };
}
