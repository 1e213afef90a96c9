import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { ingest } from '#lib/conductor/apply';
import { inGuestOrder } from '#lib/conductor/order';

// SQS-triggered: a batch's records side by side, each guest's in order (lib/conductor/order.ts),
// with a partial batch response. Forged, stale or malformed reports are consumed and dropped
// (retrying cannot make them valid); only failures of our own (DynamoDB, Step Functions) leave
// the record for redelivery.
const processor = new BatchProcessor(EventType.SQS);

async function record(r: SQSRecord): Promise<void> {
  await inGuestOrder(r.body, (body) => ingest(body));
}

export const handler = async (event: SQSEvent) => processPartialResponse(event, record, processor);
