import { randomUUID } from 'node:crypto';

// Trove names each fault body after its HTTP class (trove/common/wsgi.py::Fault); clients read
// the status code and `message`, so the names must match exactly.
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflict',
  413: 'overLimit',
  415: 'badMediaType',
  422: 'unprocessableEntity',
  500: 'instanceFault',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

export function faultName(status: number): string {
  return FAULT_NAMES[status] ?? (status >= 500 ? 'serverError' : 'badRequest');
}

export type FaultBody = Record<string, { code: number; message: string }>;

export function faultBody(status: number, message: string): FaultBody {
  return { [faultName(status)]: { code: status, message } };
}

/** A failure the client can act on: it carries Trove's status code and message. */
export class TroveError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends TroveError {
  constructor(message: string) {
    super(400, message);
  }
}
export class Unauthorized extends TroveError {
  constructor(message = 'The request you have made requires authentication.') {
    super(401, message);
  }
}
export class Forbidden extends TroveError {
  constructor(message = 'You are not authorized to perform the requested action.') {
    super(403, message);
  }
}
export class NotFound extends TroveError {
  constructor(message = 'The resource could not be found.') {
    super(404, message);
  }
}
export class UnprocessableEntity extends TroveError {
  constructor(message: string) {
    super(422, message);
  }
}
export class Conflict extends TroveError {
  constructor(message: string) {
    super(409, message);
  }
}
export class OverLimit extends TroveError {
  constructor(message: string) {
    super(413, message);
  }
}
/**
 * Trove's rate limiter (OverLimitFault): 413 `overLimit` with the limit's message as `details`
 * and the seconds to wait in `retryAfter` and the Retry-After header.
 */
export class RateLimited extends TroveError {
  constructor(
    readonly details: string,
    readonly retryAfterSeconds: number,
  ) {
    super(413, 'This request was rate-limited.');
  }
}
export class NotImplemented extends TroveError {
  constructor(message: string) {
    super(501, message);
  }
}

/** Node's network errors: the backing service's port refused, dropped or never answered. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/**
 * AWS services' own "not now": throttled, or unavailable for the moment. The throttling names are
 * the SDK's own list (@smithy/service-error-classification).
 */
const UNAVAILABLE_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TransactionInProgressException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
]);
/** HTTP answers of a service that cannot take the request now (too many, unavailable, a gateway). */
const UNAVAILABLE_STATUSES = new Set([429, 502, 503, 504]);

/**
 * Whether `err` says a backing service (DynamoDB, SQS, Step Functions...) could not be reached or
 * would not serve just now, after the SDK's own retries: the request was fine, and may succeed
 * if sent again. Such a failure is a 503, not an internal error.
 */
export function backingServiceUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 3; depth++) {
    const { name, code, $metadata } = e as {
      name?: string;
      code?: string;
      $metadata?: { httpStatusCode?: number };
    };
    if ((name && UNAVAILABLE_NAMES.has(name)) || (code && NETWORK_CODES.has(code))) return true;
    if (UNAVAILABLE_STATUSES.has($metadata?.httpStatusCode ?? 0)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export const UNAVAILABLE_MESSAGE =
  'The service is unavailable for the moment (a service it stands on did not answer); try again.';

/** Trove's message for an unhandled exception: the id lets an operator find the log line. */
export function internalErrorMessage(id: string = randomUUID()): string {
  return `Internal Server Error. Please keep this ID to help us figure out what went wrong: (${id}).`;
}
