import type { z } from 'zod';
import { BadRequest } from '../errors.ts';

/**
 * Validates a request body against its zod schema. Failures read like Trove's jsonschema errors
 * ("Validation error: instance['name'] ...") and are 400s; a body that is not even an object
 * (Trove answers 500 there) is a 400 too.
 */
export function validate<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest('Validation error: the request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    const path = issue.path
      .map((p, i) => (i === 0 ? String(p) : `[${JSON.stringify(p).replaceAll('"', "'")}]`))
      .join('');
    return `${path || 'body'} ${issue.message}`;
  });
  throw new BadRequest(`Validation error: ${messages.join('; ')}`);
}
