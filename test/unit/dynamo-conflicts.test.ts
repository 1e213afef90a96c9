import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { isTransactionConflict, retryingConflicts } from '../../lib/dynamo.ts';

// A write that meets a transaction on the same item is refused, and nothing is written: it is
// sent again. Any other refusal (a condition, a cancellation for another reason) is the caller's.

const conflict = () =>
  Object.assign(new Error('Transaction is ongoing for the item'), { name: 'TransactionConflictException' });
const cancelled = (code: string) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: [{ Code: 'None' }, { Code: code }],
  });

describe('writes that meet a transaction on their item', () => {
  it('are sent again until they go through', async () => {
    const errors = [conflict(), cancelled('TransactionConflict')];
    let calls = 0;
    const written = await retryingConflicts(async () => {
      calls++;
      const err = errors.shift();
      if (err) throw err;
      return 'written';
    });
    expect(written).toBe('written');
    expect(calls).toBe(3);
  });

  it('give up after five attempts with the conflict itself', async () => {
    let calls = 0;
    await expect(
      retryingConflicts(async () => {
        calls++;
        throw conflict();
      }),
    ).rejects.toThrow('Transaction is ongoing');
    expect(calls).toBe(5);
  });

  it('are not sent again for any other refusal', async () => {
    for (const err of [
      cancelled('ConditionalCheckFailed'),
      Object.assign(new Error('no'), { name: 'ConditionalCheckFailedException' }),
    ]) {
      let calls = 0;
      await expect(
        retryingConflicts(async () => {
          calls++;
          throw err;
        }),
      ).rejects.toBe(err);
      expect(calls).toBe(1);
    }
    expect(isTransactionConflict(cancelled('ConditionalCheckFailed'))).toBe(false);
    expect(isTransactionConflict(undefined)).toBe(false);
  });
});
