import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

// The document client for conditional updates and transactions across tables (instance and
// quota items change together); dynamoose models serve the plain catalog reads.
export const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});

/** Trove's timestamps: ISO 8601 without zone or fraction, in UTC. */
export function troveTime(d: Date = new Date()): string {
  return d.toISOString().slice(0, 19);
}

const CONFLICT_ATTEMPTS = 5;
const CONFLICT_BACKOFF_MS = 20;

/**
 * DynamoDB refuses a write to an item that a transaction is writing at that moment
 * (TransactionConflictException; a transaction meeting another write is cancelled with reason
 * TransactionConflict). Nothing was written, and AWS's advice is to send it again: the SDK does
 * not (it is a 400), so this does, after a short jittered wait. Steps that run side by side and
 * write the same item (a launch recording its server while its certificate is recorded) meet it.
 */
export async function retryingConflicts<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= CONFLICT_ATTEMPTS || !isTransactionConflict(err)) throw err;
      await sleep(CONFLICT_BACKOFF_MS * attempt * (0.5 + Math.random()));
    }
  }
}

export function isTransactionConflict(err: unknown): boolean {
  if ((err as Error | undefined)?.name === 'TransactionConflictException') return true;
  return (
    err instanceof TransactionCanceledException &&
    (err.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict')
  );
}
