import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { HttpEvent, HttpResult } from '#lib/http/response';
import { logger } from '#lib/logger';
import { mistralError, serveMistral } from '#lib/mistral/facade';

/**
 * The `workflowv2` endpoint: the Mistral v2 subset python-troveclient's backup schedules use
 * (lib/mistral/). Mistral's answers, not Trove's fault bodies; an unexpected failure is Mistral's
 * 500 body with the id that was logged, never internals.
 */
export const handler = middy<HttpEvent, HttpResult>()
  .use(injectLambdaContext(logger))
  .use(httpHeaderNormalizer())
  .handler(async (event) => {
    const requestId = event.requestContext?.requestId ?? '';
    const raw = event.body ?? undefined;
    const answer = await serveMistral({
      method: event.requestContext?.http?.method ?? 'GET',
      rawPath: event.rawPath ?? '/',
      query: event.queryStringParameters ?? {},
      token: event.headers?.['x-auth-token'],
      body: raw !== undefined && event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw,
    }).catch((err: unknown) => {
      logger.error('mistral facade failed', { error: (err as Error).message });
      return mistralError(500, `Internal error (request ${requestId}).`);
    });
    return {
      statusCode: answer.status,
      headers: {
        ...(answer.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...answer.headers,
      },
      body: answer.body === undefined ? '' : JSON.stringify(answer.body),
    };
  });
