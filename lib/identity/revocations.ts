import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';

// Keystone's token revocation: a revoked token's id (jti) is recorded until the moment the token
// would have expired anyway (DynamoDB's TTL then drops the record), and every function that
// accepts tokens asks whether the token it holds was revoked.
//
// A small bounded cache keeps that question off most requests. Why its TTL is safe: a revocation
// is permanent, so "revoked" answers are kept until the token expires and can never go stale;
// only "not revoked" answers can, and they are kept for revocationCacheSeconds (5 s by default),
// so a revoked token is refused by every warm function at most that long after the revocation —
// a small fraction of a token's lifetime (1 h), and the same window Keystone's own revocation
// cache (revoke_cache_time, 3600 s by default) leaves far wider.

const MAX_ENTRIES = 10_000;
const cache = new Map<string, { revoked: boolean; until: number }>();

function remember(jti: string, revoked: boolean, until: number): void {
  cache.delete(jti);
  // Map keeps insertion order: the first key is the oldest entry.
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(jti, { revoked, until });
}

const recordKey = (jti: string) => ({ pk: `revoked#${jti}`, sk: 'token' });

/** `expiresAt` is the token's own expiry (Unix seconds). */
export async function isRevoked(jti: string, expiresAt: number, now = Date.now()): Promise<boolean> {
  const cached = cache.get(jti);
  if (cached && cached.until > now) return cached.revoked;
  const out = await documents.send(
    new GetCommand({ TableName: config.identityTable, Key: recordKey(jti), ProjectionExpression: 'pk' }),
  );
  const revoked = Boolean(out.Item);
  remember(jti, revoked, revoked ? expiresAt * 1000 : now + config.revocationCacheSeconds * 1000);
  return revoked;
}

export async function revokeToken(jti: string, expiresAt: number, now = Date.now()): Promise<void> {
  await documents.send(
    new PutCommand({
      TableName: config.identityTable,
      Item: { ...recordKey(jti), revoked_at: Math.floor(now / 1000), expires_at: expiresAt },
    }),
  );
  remember(jti, true, expiresAt * 1000);
}

/** For tests: forget every cached answer. */
export function clearRevocationCache(): void {
  cache.clear();
}
