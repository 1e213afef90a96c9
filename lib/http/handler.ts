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
import { serverTiming, timed } from './timing.ts';

export type PublicRoute = (event: HttpEvent, context: Context) => Promise<HttpResult>;
export type ProjectRoute = (event: HttpEvent, caller: Caller, context: Context) => Promise<HttpResult>;

const callers = new WeakMap<HttpEvent, Caller>();
/** A read-only route's rate-limit check, still running while the route reads (see below). */
const counting = new WeakMap<HttpEvent, Promise<void>>();

export interface ProjectOptions {
  /**
   * Route keys whose routes only read tables (show, list). Their request is counted against the
   * rate limits while the route reads, instead of before: the limiter's write and the route's
   * read overlap, so a show costs one table call's time, not two. A request over a limit is
   * still answered 413 and nothing else (the read is dropped; it changed nothing), and before
   * any other fault the request may earn after the check, as when the check came first.
   */
  readOnly?: string[];
}

// Authentication runs before the body is parsed, as keystonemiddleware runs before Trove's
// controllers: an anonymous request gets 401 whatever its body. Trove's rate limiter comes next
// in its pipeline, before any route: a request over a limit is refused without being served.
function authentication(readOnly: ReadonlySet<string>): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const event = request.event;
      const caller = await timed(event, 'token', () => authenticateCaller(event));
      const check = timed(event, 'limits', () =>
        checkRateLimits(
          caller,
          event.requestContext?.http?.method ?? '',
          event.rawPath ?? event.requestContext?.http?.path ?? '/',
        ),
      );
      if (readOnly.has(event.routeKey)) {
        // Awaited by the handler or by onError below; until then a refusal must not count as an
        // unhandled rejection (which ends a Lambda process).
        check.catch(() => {});
        counting.set(event, check);
      } else await check;
      callers.set(event, caller);
    },
    // A fault raised after the check started (a bad parameter, say) gives way to the limit's 413,
    // as it would had the check been awaited first.
    onError: async (request) => {
      const check = counting.get(request.event);
      if (!check) return;
      counting.delete(request.event);
      await check.catch((refused: unknown) => {
        request.error = refused as Error;
      });
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
    .use(serverTiming())
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
export function projectHandler(route: ProjectRoute, options: ProjectOptions = {}) {
  return edge([authentication(new Set(options.readOnly))]).handler(async (event, context) => {
    const caller = callers.get(event);
    if (!caller) throw new Error('authentication middleware did not run');
    const served = timed(event, 'route', () => route(event, caller, context));
    const check = counting.get(event);
    if (!check) return served;
    // Both settle before anything is answered: the limit's refusal wins over the route's answer.
    const [limits, result] = await Promise.allSettled([check, served]);
    counting.delete(event);
    if (limits.status === 'rejected') throw limits.reason;
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
}
