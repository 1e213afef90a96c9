import type { MiddlewareObj } from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { HttpEvent, HttpResult } from './response.ts';

/**
 * JSON bodies through middy's parser, but only when a body was sent: Trove routes such as
 * `POST /root` take an optional body, and GETs carry none. Content-Type is not enforced
 * (Trove accepts JSON without it), so a malformed body is the only parse failure.
 */
export function jsonBody(): MiddlewareObj<HttpEvent, HttpResult> {
  // middy 7 refuses `__proto__` (and `constructor.prototype`) keys with a 422, which
  // troveErrors answers as Trove's 400 "Malformed request body", like any unparseable body.
  const parser = httpJsonBodyParser({ disableContentTypeCheck: true });
  return {
    before: async (request) => {
      const body = request.event.body;
      if (body === undefined || body === null || body === '') {
        (request.event as { body?: unknown }).body = undefined;
        return;
      }
      await parser.before?.(request as never);
    },
  };
}

/** The parsed body of an event that went through jsonBody(). */
export function parsedBody(event: HttpEvent): unknown {
  return (event as { body?: unknown }).body;
}
