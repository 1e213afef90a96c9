import { describe, expect, it } from 'vitest';
import { BadRequest, faultBody, faultName, internalErrorMessage, NotFound } from '../../lib/errors.ts';

describe('Trove fault bodies', () => {
  it.each([
    [400, 'badRequest'],
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [404, 'itemNotFound'],
    [409, 'conflict'],
    [413, 'overLimit'],
    [422, 'unprocessableEntity'],
    [500, 'instanceFault'],
    [501, 'notImplemented'],
    [502, 'serverError'],
  ])('status %i is named %s', (status, name) => {
    expect(faultName(status)).toBe(name);
  });

  it('wraps code and message under the fault name', () => {
    expect(faultBody(404, 'Resource x cannot be found.')).toEqual({
      itemNotFound: { code: 404, message: 'Resource x cannot be found.' },
    });
  });

  it('errors carry their status and class name', () => {
    const err = new BadRequest('nope');
    expect(err.status).toBe(400);
    expect(err.name).toBe('BadRequest');
    expect(new NotFound().message).toBe('The resource could not be found.');
  });

  it('an internal error message carries the id to find the log line', () => {
    expect(internalErrorMessage('abc')).toMatch(/\(abc\)\.$/);
  });
});
