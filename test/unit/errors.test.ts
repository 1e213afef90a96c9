import { describe, expect, it } from 'vitest';
import {
  BadRequest,
  backingServiceUnavailable,
  faultBody,
  faultName,
  internalErrorMessage,
  NotFound,
} from '../../lib/errors.ts';
import { troveErrors } from '../../lib/http/errors.ts';

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

  it('tells a backing service out of reach from a bug', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' });
    expect(backingServiceUnavailable(refused)).toBe(true);
    expect(backingServiceUnavailable(new Error('fetch failed', { cause: refused }))).toBe(true);
    const throttled = Object.assign(new Error('rate exceeded'), { name: 'ThrottlingException' });
    expect(backingServiceUnavailable(throttled)).toBe(true);
    const unavailable = Object.assign(new Error('x'), { name: 'X', $metadata: { httpStatusCode: 503 } });
    expect(backingServiceUnavailable(unavailable)).toBe(true);
    expect(
      backingServiceUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')")),
    ).toBe(false);
    const conditional = Object.assign(new Error('failed'), {
      name: 'ConditionalCheckFailedException',
      $metadata: { httpStatusCode: 400 },
    });
    expect(backingServiceUnavailable(conditional)).toBe(false);
  });

  it('answers 503 serviceUnavailable, without the Retry-After troveclient fails on, when the table is out of reach; 500 for a bug', async () => {
    const answer = async (error: Error) => {
      const request = {
        error,
        event: { rawPath: '/v1.0/p/instances' },
        context: { awsRequestId: 'req-1' },
        response: undefined as unknown as {
          statusCode: number;
          headers?: Record<string, string>;
          body: string;
        },
      };
      await troveErrors().onError?.(request as never);
      return request.response;
    };
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const outage = await answer(refused);
    expect(outage.statusCode).toBe(503);
    expect(outage.headers?.['retry-after']).toBeUndefined();
    expect(JSON.parse(outage.body)).toEqual({
      serviceUnavailable: { code: 503, message: expect.stringMatching(/try again/) },
    });
    const bug = await answer(new TypeError('x is undefined'));
    expect(bug.statusCode).toBe(500);
    expect(JSON.parse(bug.body).instanceFault.message).toMatch(/\(req-1\)/);
  });
});
