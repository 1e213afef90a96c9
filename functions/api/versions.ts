import { publicHandler } from '#lib/http/handler';
import { baseUrl, json } from '#lib/http/response';
import type { VersionsResponse } from '#lib/openapi/schemas';

/** `GET /`: Trove's version document, the only unversioned route. */
export const handler = publicHandler(async (event) =>
  json(200, {
    versions: [
      {
        id: 'v1.0',
        status: 'CURRENT',
        updated: '2012-08-01T00:00:00Z',
        links: [{ rel: 'self', href: `${baseUrl(event)}/v1.0/` }],
      },
    ],
  } satisfies VersionsResponse),
);
