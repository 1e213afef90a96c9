import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { bucketOf, limitKey, pour, type RateLimit } from './rates.ts';

// One item per project and limit: the time its bucket drains (`drains_at`, ms). Trove keeps its
// buckets in each API process's memory; Lambda instances come and go, so they share this table.
// An idle bucket is worth nothing once drained: the item expires then (TTL), and a bucket that is
// gone is an empty one.

const table = () => config.rateLimitsTable;

/** Conditional writes lost to a concurrent request of the same project are tried again. */
const ATTEMPTS = 8;
/** Rounding slack in the room condition, as pour's own (a microsecond of bucket time). */
const ROOM_EPSILON_MS = 0.001;

/**
 * What this function instance last wrote or saw per bucket: the first guess for the next write,
 * so that a busy project's request costs one write, not a refused one and a second.
 */
const lastSeen = new Map<string, number>();

/**
 * Pours one request into the project's bucket for `limit`: the delay (ms) until it would be
 * taken when the bucket is full, or undefined when it was. Atomic across function instances:
 * an empty bucket is filled by a write conditioned on its being empty, and a bucket with water
 * in it is topped up by an increment conditioned on its room (`drains_at + per` stays within a
 * unit), so concurrent requests of one project each take one write instead of racing for the
 * same value and retrying (seen: 8 clients of one project spent 35-45 ms a request here).
 */
export async function takeRequest(
  projectId: string,
  limit: RateLimit,
  now = Date.now(),
): Promise<number | undefined> {
  const bucket = bucketOf(limit);
  const key = { project_id: projectId, limit: limitKey(limit) };
  const cacheKey = `${projectId} ${key.limit}`;
  let seen = lastSeen.get(cacheKey);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const poured = pour(bucket, seen, now);
    if (!poured.ok) return poured.delayMs;
    const filling = seen !== undefined && seen > now;
    try {
      const out = await documents.send(
        new UpdateCommand({
          TableName: table(),
          Key: key,
          ...(filling
            ? {
                UpdateExpression: 'SET drains_at = drains_at + :per, expires_at = :expires',
                // Still water in it, and room for one more: pour's own test, as a condition.
                ConditionExpression: 'drains_at > :now AND drains_at <= :room',
                ExpressionAttributeValues: {
                  ':per': bucket.perRequestMs,
                  ':now': now,
                  ':room': now + bucket.capacityMs - bucket.perRequestMs + ROOM_EPSILON_MS,
                  // The new drains_at is at most now + a unit; the item outlives it.
                  ':expires': Math.ceil((now + bucket.capacityMs) / 1000) + 60,
                },
                ReturnValues: 'UPDATED_NEW' as const,
              }
            : {
                UpdateExpression: 'SET drains_at = :next, expires_at = :expires',
                ConditionExpression: 'attribute_not_exists(drains_at) OR drains_at <= :now',
                ExpressionAttributeValues: {
                  ':next': poured.drainsAt,
                  ':now': now,
                  ':expires': Math.ceil(poured.drainsAt / 1000) + 60,
                },
              }),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      remember(cacheKey, (filling ? drainsAtOf(out.Attributes?.drains_at) : undefined) ?? poured.drainsAt);
      return undefined;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // The bucket as it is: empty (no item, or drained), full, or with room after all.
      seen = drainsAtOf(err.Item?.drains_at);
    }
  }
  if (seen !== undefined) remember(cacheKey, seen);
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

function remember(key: string, drainsAt: number): void {
  // Bounded: a function instance serving many projects forgets the oldest first.
  if (lastSeen.size >= 10_000) lastSeen.delete(lastSeen.keys().next().value as string);
  lastSeen.set(key, drainsAt);
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
