import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

// The AWS JSON 1.0 protocol as @aws-sdk/client-sfn speaks it: every call is a POST whose operation
// is named by X-Amz-Target, and a modelled error is recognised by `__type` alone, so the SDK throws
// the matching exception class (ExecutionDoesNotExist, InvalidArn, ...).
const TARGET_PREFIX = 'AWSStepFunctions.';
const CONTENT_TYPE = 'application/x-amz-json-1.0';

/** An error the client is meant to see, under its AWS error code. */
export class ServiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

export type Params = Record<string, unknown>;

export interface ApiRequest {
  operation: string;
  params: Params;
}

export async function readRequest(req: IncomingMessage): Promise<ApiRequest> {
  const target = req.headers['x-amz-target'];
  if (req.method !== 'POST' || typeof target !== 'string' || !target.startsWith(TARGET_PREFIX)) {
    throw new ServiceError(
      'UnknownOperationException',
      'Expected a POST with X-Amz-Target: AWSStepFunctions.*',
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown = {};
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      throw new ServiceError('SerializationException', 'Request body is not valid JSON');
    }
  }
  if (!isObject(body)) throw new ServiceError('SerializationException', 'Request body must be a JSON object');
  return { operation: target.slice(TARGET_PREFIX.length), params: body };
}

export function sendResult(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': CONTENT_TYPE,
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, error: ServiceError): void {
  sendResult(res, error.status, { __type: error.code, message: error.message });
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function requiredString(params: Params, key: string): string {
  const value = params[key];
  if (typeof value !== 'string' || value === '') {
    throw new ServiceError('ValidationException', `Value for '${key}' must be a non-empty string`);
  }
  return value;
}

export function optionalString(params: Params, key: string): string | undefined {
  const value = params[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new ServiceError('ValidationException', `Value for '${key}' must be a string`);
  return value;
}

export function optionalNumber(params: Params, key: string): number | undefined {
  const value = params[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number')
    throw new ServiceError('ValidationException', `Value for '${key}' must be a number`);
  return value;
}

/** Epoch milliseconds as the epoch seconds the JSON protocol carries timestamps in. */
export function toEpochSeconds(ms: number): number {
  return ms / 1000;
}

/**
 * One page of `items`; the token is the offset of the next page, opaque to clients. A maxResults
 * of 0 means the default, as in AWS.
 */
export function paginate<T>(items: T[], params: Params): { page: T[]; nextToken?: string } {
  const maxResults = optionalNumber(params, 'maxResults') || 100;
  const token = optionalString(params, 'nextToken');
  const start = token === undefined ? 0 : Number.parseInt(token, 10);
  if (!Number.isInteger(start) || start < 0 || start > items.length) {
    throw new ServiceError('InvalidToken', 'Invalid nextToken');
  }
  const end = start + maxResults;
  return { page: items.slice(start, end), ...(end < items.length ? { nextToken: String(end) } : {}) };
}
