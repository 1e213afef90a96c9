import type { ServiceInputTypes } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

// The rate limiter's bucket writes against an in-memory table that evaluates the two conditional
// updates lib/limits/store.ts sends (fill an empty bucket; top up one with room), and a handler
// whose read-only route is counted while it runs.

const SECRET = 'unit-test-secret-unit-test-secret-0123';
const PROJECT = 'p-limits';
const claims = {
  user_id: 'u1',
  user_name: 'demo',
  domain_id: 'default',
  project_id: PROJECT,
  project_name: 'demo',
  roles: ['member'],
};

interface Values {
  ':now': number;
  ':next'?: number;
  ':pour'?: number;
  ':room'?: number;
}

async function fakeBuckets() {
  const { ConditionalCheckFailedException } = await import('@aws-sdk/client-dynamodb');
  const { documents } = await import('../../lib/dynamo.ts');
  const buckets = new Map<string, number>();
  let writes = 0;
  const send = vi.spyOn(documents, 'send').mockImplementation((async (command: {
    constructor: { name: string };
    input: ServiceInputTypes;
  }) => {
    // The revocation lookup: nothing revoked.
    if (command.constructor.name !== 'UpdateCommand') return {};
    writes++;
    const input = command.input as {
      Key: { project_id: string; limit: string };
      ConditionExpression: string;
      ExpressionAttributeValues: Values;
    };
    const key = `${input.Key.project_id} ${input.Key.limit}`;
    const v = input.ExpressionAttributeValues;
    // A real table answers only after the others' writes that came first; each is atomic.
    await new Promise((r) => setImmediate(r));
    const drains = buckets.get(key);
    const filling = input.ConditionExpression.startsWith('drains_at >');
    const ok = filling
      ? drains !== undefined && drains > v[':now'] && drains <= (v[':room'] ?? 0)
      : drains === undefined || drains <= v[':now'];
    if (!ok)
      throw new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
        Item: drains === undefined ? undefined : { drains_at: { N: String(drains) } },
      });
    const next = filling ? (drains ?? 0) + (v[':pour'] ?? 0) : (v[':next'] ?? 0);
    buckets.set(key, next);
    return filling ? { Attributes: { drains_at: next } } : {};
  }) as never);
  return { buckets, send, writes: () => writes };
}

beforeAll(() => {
  process.env.TROVELESS_TOKEN_SECRET = SECRET;
  // Read once, at the limiter's first use: 2 GETs and 2 POSTs a minute.
  process.env.TROVELESS_RATE_LIMITS = '(GET, *, .*, 2, MINUTE);(POST, *, .*, 2, MINUTE)';
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('the shared bucket', () => {
  const now = 1_800_000_000_000;
  const per = (value: number) => ({ verb: 'GET', uri: '*', regex: '.*', value, unit: 'MINUTE' as const });

  it('takes concurrent requests with one write each once it holds water, and refuses past the limit', async () => {
    const { takeRequest, heldAtMost } = await import('../../lib/limits/store.ts');
    const table = await fakeBuckets();
    // Under 100 a minute nothing is held in memory: every request writes.
    const limit = per(99);
    expect(heldAtMost(limit)).toBe(0);
    expect(await takeRequest('p-busy', limit, now)).toBeUndefined();
    expect(table.writes()).toBe(1);
    const answers = await Promise.all(Array.from({ length: 8 }, () => takeRequest('p-busy', limit, now)));
    expect(answers).toEqual(Array(8).fill(undefined));
    expect(table.writes()).toBe(9);
    expect(table.buckets.get('p-busy GET .* 99/MINUTE')).toBeCloseTo(now + (9 * 60_000) / 99, 2);

    const small = per(2);
    expect(await takeRequest('p-small', small, now)).toBeUndefined();
    expect(await takeRequest('p-small', small, now + 1)).toBeUndefined();
    // Full: the next slot drains 30 s after the first request.
    expect(await takeRequest('p-small', small, now + 2)).toBeCloseTo(29_998, 3);
  });

  it('holds up to 1% of a large limit in memory for a second, then pours it with the next write', async () => {
    const { takeRequest, heldAtMost, heldRequests, forgetBuckets } = await import(
      '../../lib/limits/store.ts'
    );
    forgetBuckets();
    const table = await fakeBuckets();
    const limit = per(1000);
    expect(heldAtMost(limit)).toBe(10);
    const key = 'p-held GET .* 1000/MINUTE';
    // The first request writes: the function knows nothing of the bucket yet.
    expect(await takeRequest('p-held', limit, now)).toBeUndefined();
    for (let i = 1; i <= 10; i++) expect(await takeRequest('p-held', limit, now + i)).toBeUndefined();
    expect(table.writes()).toBe(1);
    expect(heldRequests('p-held', limit)).toBe(10);
    // The eleventh writes itself and the ten held: eleven requests' water in one write.
    expect(await takeRequest('p-held', limit, now + 11)).toBeUndefined();
    expect(table.writes()).toBe(2);
    expect(table.buckets.get(key)).toBeCloseTo(now + 12 * 60, 2);
    expect(heldRequests('p-held', limit)).toBe(0);
    // A second after the last write, a request writes again whatever was held.
    expect(await takeRequest('p-held', limit, now + 12)).toBeUndefined();
    expect(table.writes()).toBe(2);
    expect(await takeRequest('p-held', limit, now + 1011)).toBeUndefined();
    expect(table.writes()).toBe(3);
  });

  it('holds nothing once the bucket is a quarter full: near a limit every request writes', async () => {
    const { takeRequest, forgetBuckets } = await import('../../lib/limits/store.ts');
    forgetBuckets();
    const table = await fakeBuckets();
    const limit = per(1000);
    // Another function filled a quarter of the bucket (15 s of a minute).
    table.buckets.set('p-near GET .* 1000/MINUTE', now + 15_000);
    for (let i = 0; i < 5; i++) expect(await takeRequest('p-near', limit, now + i)).toBeUndefined();
    // The first write finds the water (a refused condition) and tries again: 6 writes, 5 requests.
    expect(table.writes()).toBe(6);
  });
});

describe('a read-only route', () => {
  const event = async (method: string, path: string, routeKey: string, id = 'i1') => {
    const { issueToken } = await import('../../lib/identity/tokens.ts');
    const { token } = await issueToken(claims, 600);
    return {
      version: '2.0',
      routeKey,
      rawPath: path,
      rawQueryString: '',
      headers: { host: 'h', 'x-auth-token': token },
      pathParameters: { project_id: PROJECT, thing_id: id },
      isBase64Encoded: false,
      requestContext: { http: { method, path }, requestId: 'r', routeKey },
    } as never;
  };
  const context = { awsRequestId: 'r', functionName: 'f', getRemainingTimeInMillis: () => 1000 } as never;

  it('is counted while it reads, and a request over the limit is refused with 413 whatever it read', async () => {
    const { projectHandler } = await import('../../lib/http/handler.ts');
    const { byRouteKey } = await import('../../lib/http/routing.ts');
    const table = await fakeBuckets();
    let reads = 0;
    let posts = 0;
    const show = 'GET /v1.0/{project_id}/things/{thing_id}';
    const make = 'POST /v1.0/{project_id}/things/{thing_id}';
    const handler = projectHandler(
      byRouteKey({
        [show]: async () => {
          reads++;
          return { statusCode: 200, body: '{"thing":{}}' };
        },
        [make]: async () => {
          posts++;
          return { statusCode: 202, body: '' };
        },
      }),
      { readOnly: [show] },
    );
    const get = (id?: string) =>
      event('GET', `/v1.0/${PROJECT}/things/${id ?? 'i1'}`, show, id).then((e) => handler(e, context));
    expect(await get()).toMatchObject({ statusCode: 200, body: '{"thing":{}}' });
    expect(await get()).toMatchObject({ statusCode: 200 });
    expect(table.writes()).toBe(2);
    const refused = await get();
    expect(refused.statusCode).toBe(413);
    expect(JSON.parse(refused.body ?? '{}').overLimit).toMatchObject({ code: 413 });
    expect(refused.headers?.['retry-after']).toEqual(expect.any(String));
    // A parameter the edge refuses (400) still gives way to the limit's 413, as when the check
    // came first.
    expect((await get('x'.repeat(2000))).statusCode).toBe(413);
    expect(reads).toBe(3);

    // A route that writes is never run over the limit.
    const post = async () => handler(await event('POST', `/v1.0/${PROJECT}/things/i1`, make), context);
    expect((await post()).statusCode).toBe(202);
    expect((await post()).statusCode).toBe(202);
    expect((await post()).statusCode).toBe(413);
    expect(posts).toBe(2);
  });
});
