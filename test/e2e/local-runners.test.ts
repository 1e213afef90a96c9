import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import {
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { cloud } from './helpers.ts';

// The local stage's self-test parts (serverless/selftest.yml), driven through serverless-offline
// by the local event-source poller and the local state-machine runner.
const aws = () => ({
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});

async function seen(key: string): Promise<number> {
  const ddb = new DynamoDBClient({ ...aws(), endpoint: cloud().endpoints.dynamodb });
  const out = await ddb.send(
    new GetItemCommand({ TableName: 'troveless-local-idempotency', Key: { id: { S: `selftest#${key}` } } }),
  );
  return Number(out.Item?.seen?.N ?? '0');
}

describe('SQS-triggered functions with Lambda semantics', () => {
  it('retries only the failed record, then moves it to the DLQ; the others are processed once', async () => {
    const sqs = new SQSClient({ ...aws(), endpoint: cloud().endpoints.sqs });
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'troveless-local-selftest' }));
    const { QueueUrl: dlqUrl } = await sqs.send(
      new GetQueueUrlCommand({ QueueName: 'troveless-local-selftest-dlq' }),
    );
    const run = randomUUID();
    const good = ['a', 'b', 'c', 'd'].map((x) => `${x}-${run}`);
    const poison = `poison-${run}`;
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl,
        Entries: [...good, poison].map((body, i) => ({ Id: String(i), MessageBody: body })),
      }),
    );

    const dead = await waitUntil(
      'poison record in the DLQ',
      async () => {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }));
        return out.Messages?.find((m) => m.Body === poison);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(dead.Body).toBe(poison);
    expect(await seen(`consume#${poison}`)).toBe(2); // maxReceiveCount
    for (const body of good) expect(await seen(`consume#${body}`)).toBe(1);
  });
});

describe('state machines through the local Step Functions API', () => {
  const sfn = () => new SFNClient({ ...aws(), endpoint: cloud().endpoints.stepfunctions });
  const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:troveless-local-selftest-retry-catch';

  async function runToEnd(input: object) {
    const { executionArn } = await sfn().send(
      new StartExecutionCommand({ stateMachineArn: arn, input: JSON.stringify(input) }),
    );
    return waitUntil(
      'execution end',
      async () => {
        const d = await sfn().send(new DescribeExecutionCommand({ executionArn }));
        return d.status === 'RUNNING' ? undefined : d;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  }

  it('retries a transient failure and succeeds', async () => {
    const key = randomUUID();
    const done = await runToEnd({ key, failures: 2 });
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output ?? '{}')).toEqual({ key, attempts: 3 });
    expect(await seen(`step#${key}`)).toBe(3);
  });

  it('catches a failure that retries cannot mend, and reports it truthfully', async () => {
    const key = randomUUID();
    const permanent = await runToEnd({ key, failures: 0, permanent: true });
    expect(permanent.status).toBe('SUCCEEDED');
    expect(JSON.parse(permanent.output ?? '{}')).toMatchObject({
      recovered: true,
      error: 'Selftest.Permanent',
    });
    expect(await seen(`step#${key}`)).toBe(1); // not retried: only Selftest.Transient is

    const exhausted = await runToEnd({ key: `${key}-x`, failures: 10 });
    expect(JSON.parse(exhausted.output ?? '{}')).toMatchObject({
      recovered: true,
      error: 'Selftest.Transient',
    });
    expect(await seen(`step#${key}-x`)).toBe(4); // the first attempt and MaxAttempts retries
  });
});
