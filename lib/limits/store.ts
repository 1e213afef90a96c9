import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { bucketOf, limitKey, pour, type RateLimit } from './rates.ts';

// One item per project and limit: the time its bucket drains (`drains_at`, ms). Trove keeps its
// buckets in each API process's memory; Lambda instances come and go, so they share this table.
// An idle bucket is worth nothing once drained: the item expires then (TTL), and a bucket that is
// gone is an empty one.
//
// A write per request made the limiter the dearest part of a read: DynamoDB Local's conditional
// update (2.5-4 ms) outlasts the GetItem a show needs (1.3 ms). Far from full, a function counts
// a few requests in memory and pours them with its next write: while the water its last write
// left, plus what it holds, is under a quarter of the bucket, and for at most a second, it holds
// up to 1% of the limit (100 at most; none under 100 a unit, so small limits stay exact). Near a
// limit every request writes, so refusals are decided on the table's water as before. What can
// go uncounted is what a function held when it went idle: at most 1% of a unit each.

const table = () => config.rateLimitsTable;

/** Conditional writes lost to a concurrent request of the same project are tried again. */
const ATTEMPTS = 8;
/** Rounding slack in the room condition, as pour's own (a microsecond of bucket time). */
const ROOM_EPSILON_MS = 0.001;
/** Requests held in memory at most: this share of the limit, and never more than HELD_MAX. */
const HELD_SHARE = 0.01;
const HELD_MAX = 100;
/** How long after its last write a function may still count in memory. */
const HELD_MS = 1000;

/** Requests a function may hold in memory for `limit` before writing (0: every request writes). */
export function heldAtMost(limit: RateLimit): number {
  return Math.min(Math.floor(limit.value * HELD_SHARE), HELD_MAX);
}

/**
 * What this function instance knows of each bucket: when its water drains as last written or
 * seen (the first guess for the next write, so that a busy project's request costs one write,
 * not a refused one and a second), when that was, and the requests it served since without
 * writing them.
 */
interface Known {
  drainsAt: number;
  writtenAt: number;
  held: number;
}
const known = new Map<string, Known>();

/**
 * Pours one request into the project's bucket for `limit`: the delay (ms) until it would be
 * taken when the bucket is full, or undefined when it was. Atomic across function instances:
 * an empty bucket is filled by a write conditioned on its being empty, and a bucket with water
 * in it is topped up by an increment conditioned on its room (`drains_at + per` stays within a
 * unit), so concurrent requests of one project each take one write instead of racing for the
 * same value and retrying (seen: 8 clients of one project spent 35-45 ms a request here). Far
 * from full, the request may be held in memory instead (see above).
 */
export async function takeRequest(
  projectId: string,
  limit: RateLimit,
  now = Date.now(),
): Promise<number | undefined> {
  const bucket = bucketOf(limit);
  const key = { project_id: projectId, limit: limitKey(limit) };
  const cacheKey = `${projectId} ${key.limit}`;
  const last = known.get(cacheKey);
  const held = last?.held ?? 0;
  if (last && held < heldAtMost(limit) && now - last.writtenAt < HELD_MS) {
    const water = Math.max(last.drainsAt - now, 0) + (held + 1) * bucket.perRequestMs;
    if (water <= bucket.capacityMs / 4) {
      last.held = held + 1;
      return undefined;
    }
  }
  // This request and the ones held: they were served, so they are poured whatever the room; the
  // room asked for is this request's.
  const count = held + 1;
  const pouring = count * bucket.perRequestMs;
  let seen = last?.drainsAt;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const poured = pour(bucket, seen, now);
    if (!poured.ok) {
      // Refused: the held requests are forgotten with it (under 1% of a unit; the bucket is full).
      remember(cacheKey, { drainsAt: seen ?? now, writtenAt: now, held: 0 });
      return poured.delayMs;
    }
    const filling = seen !== undefined && seen > now;
    try {
      const out = await documents.send(
        new UpdateCommand({
          TableName: table(),
          Key: key,
          ...(filling
            ? {
                UpdateExpression: 'SET drains_at = drains_at + :pour, expires_at = :expires',
                // Still water in it, and room for this request: pour's own test, as a condition.
                ConditionExpression: 'drains_at > :now AND drains_at <= :room',
                ExpressionAttributeValues: {
                  ':pour': pouring,
                  ':now': now,
                  ':room': now + bucket.capacityMs - bucket.perRequestMs + ROOM_EPSILON_MS,
                  // The new drains_at is at most now + a unit and what was held; the item outlives it.
                  ':expires': Math.ceil((now + bucket.capacityMs + pouring) / 1000) + 60,
                },
                ReturnValues: 'UPDATED_NEW' as const,
              }
            : {
                UpdateExpression: 'SET drains_at = :next, expires_at = :expires',
                ConditionExpression: 'attribute_not_exists(drains_at) OR drains_at <= :now',
                ExpressionAttributeValues: {
                  ':next': now + pouring,
                  ':now': now,
                  ':expires': Math.ceil((now + pouring) / 1000) + 60,
                },
              }),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const drainsAt = (filling ? drainsAtOf(out.Attributes?.drains_at) : undefined) ?? now + pouring;
      remember(cacheKey, { drainsAt, writtenAt: now, held: 0 });
      return undefined;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // The bucket as it is: empty (no item, or drained), full, or with room after all.
      seen = drainsAtOf(err.Item?.drains_at);
    }
  }
  if (seen !== undefined) remember(cacheKey, { drainsAt: seen, writtenAt: now, held: 0 });
  // Lost every race to concurrent requests of the same project, yet each attempt found room in
  // the bucket: the request is served. Refusing it would answer 413 for contention rather than
  // for the limit (seen in the fault soak: 150 pollers of one project refused under a limit of a
  // million a minute); at worst a burst gets a few requests past a limit that was nearly full,
  // as Trove's per-process buckets let through.
  return undefined;
}

/** The refused write's item comes back unmarshalled or not, depending on the client. */
function drainsAtOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'object' && value !== null && 'N' in value) return Number((value as { N: string }).N);
  return undefined;
}

function remember(key: string, state: Known): void {
  // Bounded: a function instance serving many projects forgets the oldest first.
  known.delete(key);
  if (known.size >= 10_000) known.delete(known.keys().next().value as string);
  known.set(key, state);
}

/** The requests this function holds in memory for a bucket (`GET /limits` counts them). */
export function heldRequests(projectId: string, limit: RateLimit): number {
  return known.get(`${projectId} ${limitKey(limit)}`)?.held ?? 0;
}

/** For tests: forget what this function knows of every bucket. */
export function forgetBuckets(): void {
  known.clear();
}

/** When each of the project's buckets drains, by limit key (missing: empty). */
export async function bucketsOf(projectId: string): Promise<Map<string, number>> {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'project_id = :p',
      ExpressionAttributeValues: { ':p': projectId },
      ConsistentRead: true,
    }),
  );
  return new Map((out.Items ?? []).map((i) => [String(i.limit), Number(i.drains_at)]));
}
