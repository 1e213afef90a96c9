import { publicHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { openApiDocument } from '#lib/openapi/document';
import { docsPage } from '#lib/openapi/page';

/** `GET /openapi.json` and `GET /docs`: the API described, as data and as a page. */
export const handler = publicHandler(
  byRouteKey({
    'GET /openapi.json': async () => json(200, openApiDocument()),
    'GET /docs': async () => ({
      statusCode: 200,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      body: docsPage(openApiDocument()),
    }),
  }),
);
