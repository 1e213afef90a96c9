import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import type { User } from './directory.ts';

// Keystone's [security_compliance] lockout_failure_attempts / lockout_duration: after that many
// wrong passwords in a row the user is refused, right password or not, until the duration has
// passed since the last failure. A locked user gets the same 401 as any wrong password, so the
// lock reveals nothing about the account.

export interface LockoutSettings {
  failureAttempts: number;
  durationSeconds: number;
}

export const lockoutSettings = (): LockoutSettings => ({
  failureAttempts: config.lockoutFailureAttempts,
  durationSeconds: config.lockoutDurationSeconds,
});

/** `locked`; `lapsed` (was locked, the duration has passed: the count starts again); or `open`. */
export function lockState(
  user: Pick<User, 'failed_auth_count' | 'failed_auth_at'>,
  nowSeconds: number,
  s: LockoutSettings = lockoutSettings(),
): 'locked' | 'lapsed' | 'open' {
  const attempts = user.failed_auth_count ?? 0;
  if (attempts < s.failureAttempts) return 'open';
  return (user.failed_auth_at ?? 0) + s.durationSeconds > nowSeconds ? 'locked' : 'lapsed';
}

const key = (userId: string) => ({ pk: `user#${userId}`, sk: 'user' });

/** Keystone's _record_failed_auth; after a lapsed lock the count starts again at one. */
export async function recordFailure(userId: string, restart: boolean, nowSeconds: number): Promise<void> {
  await documents.send(
    new UpdateCommand({
      TableName: config.identityTable,
      Key: key(userId),
      // ADD keeps concurrent failures counted, none lost to a read-modify-write race.
      UpdateExpression: restart
        ? 'SET failed_auth_count = :one, failed_auth_at = :now'
        : 'ADD failed_auth_count :one SET failed_auth_at = :now',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':one': 1, ':now': nowSeconds },
    }),
  );
}

/** Keystone's _reset_failed_auth, after a successful authentication. */
export async function resetFailures(userId: string): Promise<void> {
  await documents.send(
    new UpdateCommand({
      TableName: config.identityTable,
      Key: key(userId),
      UpdateExpression: 'REMOVE failed_auth_count, failed_auth_at',
      ConditionExpression: 'attribute_exists(pk)',
    }),
  );
}
