import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { config } from '../config.ts';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

/** Trove answers 202 with an empty body for accepted actions. */
export function accepted(): HttpResult {
  return { statusCode: 202, headers: { 'content-type': 'application/json' }, body: '' };
}

/** scheme://host[:port] the client used, or the configured public URL (links and the catalog use it). */
export function baseUrl(event: HttpEvent): string {
  if (config.publicUrl) return config.publicUrl;
  const headers = event.headers ?? {};
  const host =
    headers['x-forwarded-host'] ?? headers.host ?? event.requestContext?.domainName ?? '127.0.0.1:8779';
  const proto = headers['x-forwarded-proto']?.split(',')[0]?.trim() || 'http';
  return `${proto}://${host}`;
}
