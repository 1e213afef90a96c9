import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { ingest } from '#lib/conductor/apply';

// SQS-triggered: one record at a time, partial batch response. Forged, stale or malformed
// reports are consumed and dropped (retrying cannot make them valid); only failures of our own
// (DynamoDB, Step Functions) leave the record for redelivery.
const processor = new BatchProcessor(EventType.SQS);

async function record(r: SQSRecord): Promise<void> {
  await ingest(r.body);
}

export const handler = async (event: SQSEvent) => processPartialResponse(event, record, processor);
