import { NotFound } from '#lib/errors';
import { unroutedVersionPath } from '#lib/http/auth';
import { publicHandler } from '#lib/http/handler';

/**
 * Every route that matches nothing: Trove answers 404 (not 405) with its own fault body. Under
 * `/v1.0` its token and project checks come first, as they run before Trove's router.
 */
export const handler = publicHandler(async (event) => {
  const rawPath = event.rawPath ?? event.requestContext?.http?.path ?? '/';
  if (rawPath === '/v1.0' || rawPath.startsWith('/v1.0/')) await unroutedVersionPath(event, rawPath);
  throw new NotFound('The resource could not be found.');
});
