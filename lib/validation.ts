import { z } from 'zod';
import { BadRequest } from './errors.ts';
import { isSafeText } from './text.ts';

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

const SAFE_MESSAGE = 'must not contain control or bidirectional-override characters';

/** Free text (names, descriptions) of at most `max` characters that is safe to store and show. */
export const safeText = (max: number) => z.string().max(max).refine(isSafeText, SAFE_MESSAGE);

/**
 * A reference to something by id or name (a flavor, a configuration, a backup, an instance):
 * 255 characters at most, so that it always fits a DynamoDB key (1,024 bytes for a sort key,
 * and a character is at most 4 bytes of UTF-8).
 */
export const MAX_ID_LENGTH = 255;
export const idRef = () => z.string().min(1).max(MAX_ID_LENGTH).refine(isSafeText, SAFE_MESSAGE);

/** Trove's apischema `uuid`: where Trove's schema wants one, anything else is its 400. */
const UUID_PATTERN =
  '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';
export const troveUuid = () =>
  z
    .string()
    .min(1)
    .max(64)
    .regex(new RegExp(UUID_PATTERN), {
      error: (issue) => `${pythonRepr(issue.input)} does not match '${UUID_PATTERN}'`,
    });

/**
 * An image id for a rebuild: Trove's apischema wants a `uuid` (a Glance id, and the local
 * cloud's image is one); the EC2 driver's images are AMIs, whose ids are no UUIDs, so those
 * pass too. Anything else is the 400 Trove's schema gives.
 */
const IMAGE_ID_PATTERN = `${UUID_PATTERN}|^ami-[0-9a-f]{8}([0-9a-f]{9})?$`;
export const imageId = () =>
  z
    .string()
    .min(1)
    .max(64)
    .regex(new RegExp(IMAGE_ID_PATTERN), {
      error: (issue) => `${pythonRepr(issue.input)} does not match '${IMAGE_ID_PATTERN}'`,
    });

/** How jsonschema's messages show a string: Python's repr (double quotes when it holds a '). */
function pythonRepr(value: unknown): string {
  const text = (typeof value === 'string' ? value : String(value)).replaceAll('\\', '\\\\');
  if (!text.includes("'")) return `'${text}'`;
  return text.includes('"') ? `'${text.replaceAll("'", "\\'")}'` : `"${text}"`;
}
