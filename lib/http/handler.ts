import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { Context } from 'aws-lambda';
import { checkRateLimits } from '../limits/index.ts';
import { logger } from '../logger.ts';
import { authenticateCaller, type Caller } from './auth.ts';
import { jsonBody } from './body.ts';
import { boundedParameters, routedPath } from './edge.ts';
import { troveErrors } from './errors.ts';
import type { HttpEvent, HttpResult } from './response.ts';

export type PublicRoute = (event: HttpEvent, context: Context) => Promise<HttpResult>;
export type ProjectRoute = (event: HttpEvent, caller: Caller, context: Context) => Promise<HttpResult>;

const callers = new WeakMap<HttpEvent, Caller>();

// Authentication runs before the body is parsed, as keystonemiddleware runs before Trove's
// controllers: an anonymous request gets 401 whatever its body. Trove's rate limiter comes next
// in its pipeline, before any route: a request over a limit is refused without being served.
function authentication(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const caller = await authenticateCaller(request.event);
      const event = request.event;
      await checkRateLimits(
        caller,
        event.requestContext?.http?.method ?? '',
        event.rawPath ?? event.requestContext?.http?.path ?? '/',
      );
      callers.set(event, caller);
    },
  };
}

/**
 * The middlewares every route runs, in order: the request id on every log line, headers, Trove's
 * faults for anything thrown, and the raw path checked against the route key; `checked` (the
 * caller, for project routes) runs before the parameters are bounded and the body is parsed.
 */
function edge(checked: MiddlewareObj<HttpEvent, HttpResult>[]) {
  return middy<HttpEvent, HttpResult>()
    .use(injectLambdaContext(logger))
    .use(httpHeaderNormalizer())
    .use(troveErrors())
    .use(routedPath())
    .use(checked)
    .use(boundedParameters())
    .use(jsonBody());
}

/** A route outside any project: the version document, identity. */
export function publicHandler(route: PublicRoute) {
  return edge([]).handler((event, context) => route(event, context));
}

/** A `/v1.0/{project_id}/...` route: the caller is authenticated and scoped before the route runs. */
export function projectHandler(route: ProjectRoute) {
  return edge([authentication()]).handler((event, context) => {
    const caller = callers.get(event);
    if (!caller) throw new Error('authentication middleware did not run');
    return route(event, caller, context);
  });
}
