import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { ingest } from '#lib/conductor/apply';
import { guestOrder } from '#lib/conductor/order';
import { logger } from '#lib/logger';

// SQS-triggered: a batch's records side by side, each guest's in order (lib/conductor/order.ts),
// with a partial batch response. Forged, stale or malformed reports are consumed and dropped
// (retrying cannot make them valid); only failures of our own (DynamoDB, KMS, Step Functions)
// leave the record for redelivery. The processor and the order are the invocation's own: the local
// cloud runs concurrent invocations in one process, where a shared processor's records and
// failures would be another batch's.
export const handler = async (event: SQSEvent) => {
  const inOrder = guestOrder();
  return processPartialResponse(
    event,
    async (record: SQSRecord) => {
      await inOrder(record.body, (body) => ingest(body)).catch((err: unknown) => {
        // Said here: the batch response only names the record, which comes back after the
        // queue's visibility timeout (a minute), and whatever waits on it waits that long. The
        // body (a signed guest report) is never logged.
        logger.warn('guest report failed; it is delivered again after the visibility timeout', {
          messageId: record.messageId,
          receiveCount: record.attributes?.ApproximateReceiveCount,
          error: err instanceof Error ? err.message : String(err),
          errorName: err instanceof Error ? err.name : typeof err,
        });
        throw err;
      });
    },
    new BatchProcessor(EventType.SQS),
  );
};
