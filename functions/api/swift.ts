import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { HttpEvent, HttpResult } from '#lib/http/response';
import { logger } from '#lib/logger';
import { serveSwift, swiftError } from '#lib/logs/swift';

/**
 * The `object-store` endpoint: the read-only Swift subset python-troveclient reads published logs
 * through (lib/logs/swift.ts). Swift's answers, not Trove's fault bodies; any failure of its own is
 * a Swift 503, never a 500.
 */
export const handler = middy<HttpEvent, HttpResult>()
  .use(injectLambdaContext(logger))
  .use(httpHeaderNormalizer())
  .handler(async (event) => {
    const method = event.requestContext?.http?.method ?? 'GET';
    const answer = await serveSwift({
      method,
      rawPath: event.rawPath ?? '/',
      query: event.queryStringParameters ?? {},
      token: event.headers?.['x-auth-token'],
    }).catch((err: unknown) => {
      logger.error('swift facade failed', { error: (err as Error).message });
      return swiftError(503, method);
    });
    const binary = Buffer.isBuffer(answer.body);
    return {
      statusCode: answer.status,
      headers: { 'x-trans-id': event.requestContext?.requestId ?? '', ...answer.headers },
      body: binary ? (answer.body as Buffer).toString('base64') : (answer.body as string),
      isBase64Encoded: binary,
    };
  });
