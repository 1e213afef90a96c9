import type { MiddlewareObj } from '@middy/core';
import {
  backingServiceUnavailable,
  faultBody,
  internalErrorMessage,
  RateLimited,
  TroveError,
  UNAVAILABLE_MESSAGE,
} from '../errors.ts';
import { logger } from '../logger.ts';
import { type HttpEvent, type HttpResult, json } from './response.ts';

function httpStatusOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/**
 * Turns every thrown error into Trove's fault body. Client mistakes keep their status; the body
 * parser's 415/422 become 400 (Trove answers "Malformed request body"); anything unexpected is a
 * 500 whose message carries an id that is also logged, and never the internals.
 */
export function troveErrors(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: async (request) => {
      const err = request.error;
      if (err instanceof RateLimited) {
        const retryAfter = String(err.retryAfterSeconds);
        const fault = { code: 413, message: err.message, details: err.details, retryAfter };
        request.response = json(413, { overLimit: fault }, { 'retry-after': retryAfter });
        return;
      }
      if (err instanceof TroveError) {
        request.response = json(err.status, faultBody(err.status, err.message));
        return;
      }
      const status = httpStatusOf(err);
      if (status === 415 || status === 422) {
        request.response = json(400, faultBody(400, 'Malformed request body'));
        return;
      }
      // The table or a queue out of reach (an outage, throttling past the SDK's retries): the
      // request was fine and may be sent again, which a 503 says (and its message); a 500 would
      // not. No Retry-After: python-troveclient hands that header to every fault class it
      // builds, and only its 413's takes it, so the openstack CLI would print
      // "HttpError.__init__() got an unexpected keyword argument 'retry_after'" instead of the
      // message (test/integration/troveclient-faults.test.ts).
      if (backingServiceUnavailable(err)) {
        logger.warn('a backing service is unavailable', { error: err as Error, path: request.event.rawPath });
        request.response = json(503, faultBody(503, UNAVAILABLE_MESSAGE));
        return;
      }
      // The log line carries the request id (Logger's Lambda-context injection, handler.ts).
      logger.error('unhandled error', { error: err as Error, path: request.event.rawPath });
      const id = request.context.awsRequestId || crypto.randomUUID();
      request.response = json(500, faultBody(500, internalErrorMessage(id)));
    },
  };
}
