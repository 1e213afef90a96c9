import type {
  CloudFormationCustomResourceEvent,
  CloudFormationCustomResourceResponse,
  Context,
} from 'aws-lambda';
import { logger } from '../logger.ts';

// CloudFormation custom resources: the function must PUT its outcome to the presigned
// ResponseURL, or the stack waits for an hour. Every path, failures included, answers once.

export function isCustomResourceEvent(event: unknown): event is CloudFormationCustomResourceEvent {
  const e = event as Partial<CloudFormationCustomResourceEvent> | null;
  return typeof e?.RequestType === 'string' && typeof e.ResponseURL === 'string';
}

/** The body CloudFormation reads; `Reason` is capped since the whole body may not exceed 4 KB. */
export function customResourceResponse(
  event: CloudFormationCustomResourceEvent,
  physicalId: string,
  outcome: { data: Record<string, unknown> } | { error: string },
): CloudFormationCustomResourceResponse {
  const common = {
    PhysicalResourceId: physicalId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  };
  return 'error' in outcome
    ? { ...common, Status: 'FAILED', Reason: outcome.error.slice(0, 1000) }
    : { ...common, Status: 'SUCCESS', Data: outcome.data };
}

/**
 * Runs `work` for Create and Update (Delete leaves the data to the table's own deletion) and
 * reports to CloudFormation. The physical id stays fixed so an Update never reads as a
 * replacement (which would be followed by a Delete of the "old" resource).
 */
export async function answerCustomResource(
  event: CloudFormationCustomResourceEvent,
  context: Pick<Context, 'logStreamName'>,
  physicalId: string,
  work: () => Promise<object>,
): Promise<void> {
  let outcome: { data: Record<string, unknown> } | { error: string };
  try {
    const data = event.RequestType === 'Delete' ? {} : await work();
    outcome = { data: { ...data } };
  } catch (err) {
    logger.error('custom resource failed', { error: err as Error, requestType: event.RequestType });
    outcome = { error: `${(err as Error).message} (log stream ${context.logStreamName})` };
  }
  const body = JSON.stringify(customResourceResponse(event, physicalId, outcome));
  // The presigned URL signs no content type: send none rather than fetch's text/plain default.
  const res = await fetch(event.ResponseURL, {
    method: 'PUT',
    headers: { 'content-type': '' },
    body,
  });
  if (!res.ok) throw new Error(`CloudFormation response rejected: ${res.status} ${await res.text()}`);
}
