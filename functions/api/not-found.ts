import { NotFound } from '#lib/errors';
import { publicHandler } from '#lib/http/handler';

/** Every route that matches nothing: Trove answers 404 (not 405) with its own fault body. */
export const handler = publicHandler(async () => {
  throw new NotFound('The resource could not be found.');
});
