import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { createSqsServer } from 'local-aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsEventSource } from '../../local/sqs-event-source.ts';

const MAX_RECEIVE_COUNT = 2;

let server: Server;
let sqs: SQSClient;

beforeAll(async () => {
  server = await createSqsServer({ port: 0, emulateQueueCreationLifecycle: false });
  const { port } = server.address() as AddressInfo;
  sqs = new SQSClient({
    endpoint: `http://localhost:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
});

afterAll(async () => {
  sqs?.destroy();
  await new Promise((resolve) => server?.close(resolve));
});

interface Queues {
  url: string;
  arn: string;
  dlqUrl: string;
}

// PurgeQueue only takes effect after 60 s in local-aws-sqs, so every test gets its own queues.
async function createQueues(): Promise<Queues> {
  const name = `events-${randomUUID().slice(0, 8)}`;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = await queueAttribute(dlq.QueueUrl!, 'QueueArn');
  const RedrivePolicy = JSON.stringify({
    deadLetterTargetArn: dlqArn,
    maxReceiveCount: String(MAX_RECEIVE_COUNT),
  });
  const main = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '1', RedrivePolicy } }),
  );
  return {
    url: main.QueueUrl!,
    arn: await queueAttribute(main.QueueUrl!, 'QueueArn'),
    dlqUrl: dlq.QueueUrl!,
  };
}

async function queueAttribute(
  url: string,
  name: 'QueueArn' | 'ApproximateNumberOfMessages',
): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [name] }));
  return out.Attributes?.[name] ?? '';
}

/** Visible + in flight + delayed, i.e. nothing left that could ever be delivered again. */
async function isEmpty(url: string): Promise<boolean> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return Object.values(out.Attributes ?? {}).every((n) => n === '0');
}

async function send(url: string, bodies: string[]): Promise<void> {
  const Entries = bodies.map((MessageBody, i) => ({ Id: String(i), MessageBody }));
  const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
  expect(out.Failed ?? []).toEqual([]);
}

async function waitFor(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs an event source whose function is `handler`, recording every batch it is invoked with. */
async function withEventSource(
  queues: Queues,
  handler: (records: SQSRecord[], call: number) => unknown,
  body: (batches: SQSRecord[][]) => Promise<void>,
): Promise<void> {
  const batches: SQSRecord[][] = [];
  const source = new SqsEventSource({
    sqs,
    queueUrl: queues.url,
    queueArn: queues.arn,
    functionName: 'consumer',
    batchSize: 10,
    reportBatchItemFailures: true,
    invoke: async (_name: string, event: SQSEvent) => {
      batches.push(event.Records);
      return handler(event.Records, batches.length);
    },
    log: () => {},
  });
  source.start();
  try {
    await body(batches);
  } finally {
    await source.stop();
  }
}

/**
 * Every ReceiveMessage (with its wait) and GetQueueAttributes made on the queue at `url`, in order,
 * until stop().
 */
function recordPolls(url: string): string[] & { stop(): void } {
  const polls: string[] = [];
  const name = `polls-${randomUUID()}`;
  const record =
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: unknown) => {
      const input = (args as { input?: { QueueUrl?: string; WaitTimeSeconds?: number } }).input;
      const command = context.commandName ?? '';
      if (input?.QueueUrl !== url) return next(args);
      if (command === 'ReceiveMessageCommand') polls.push(`${command} wait ${input.WaitTimeSeconds}`);
      if (command === 'GetQueueAttributesCommand') polls.push(command);
      return next(args);
    };
  sqs.middlewareStack.add(record as never, { step: 'initialize', name });
  return Object.assign(polls, { stop: () => void sqs.middlewareStack.remove(name) });
}

const bodiesSeen = (batches: SQSRecord[][]) => batches.flat().map((r) => r.body);
const countOf = (batches: SQSRecord[][], body: string) =>
  bodiesSeen(batches).filter((b) => b === body).length;

describe('SqsEventSource against local-aws-sqs', () => {
  it('deletes the processed records and lets a reported failure go to the DLQ after maxReceiveCount', async () => {
    const queues = await createQueues();
    const bodies = ['a', 'b', 'c', 'd', 'poison'];
    const dead: Message[] = [];
    await withEventSource(
      queues,
      (records) => ({
        batchItemFailures: records
          .filter((r) => r.body === 'poison')
          .map((r) => ({ itemIdentifier: r.messageId })),
      }),
      async (batches) => {
        await send(queues.url, bodies);
        await waitFor(async () => {
          const out = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queues.dlqUrl, WaitTimeSeconds: 0 }),
          );
          dead.push(...(out.Messages ?? []));
          return dead.length > 0;
        }, 'poison in the DLQ');
        await waitFor(() => isEmpty(queues.url), 'the main queue to empty');

        expect(batches[0]?.map((r) => r.body).sort()).toEqual(bodies);
        for (const body of ['a', 'b', 'c', 'd']) expect(countOf(batches, body)).toBe(1);
        const poison = batches.flat().filter((r) => r.body === 'poison');
        expect(poison.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
        expect(dead.map((m) => [m.MessageId, m.Body])).toEqual([[poison[0]?.messageId, 'poison']]);
        expect(poison[0]).toMatchObject({
          eventSource: 'aws:sqs',
          eventSourceARN: queues.arn,
          awsRegion: 'us-east-1',
          messageAttributes: {},
          md5OfBody: expect.stringMatching(/^[0-9a-f]{32}$/),
          attributes: { SentTimestamp: expect.any(String), SenderId: expect.any(String) },
        });
      },
    );
  });

  it('takes a backlog in full batches, one receive per batch once a full one came', async () => {
    const queues = await createQueues();
    const bodies = Array.from({ length: 50 }, (_, n) => `m${n}`);
    for (let i = 0; i < bodies.length; i += 10) await send(queues.url, bodies.slice(i, i + 10));
    const polls = recordPolls(queues.url);
    try {
      await withEventSource(
        queues,
        () => ({ batchItemFailures: [] }),
        async (batches) => {
          await waitFor(() => batches.length >= 5, 'five batches');
          expect(batches.map((b) => b.length)).toEqual([10, 10, 10, 10, 10]);
          expect(bodiesSeen(batches).sort()).toEqual([...bodies].sort());
          // The first batch: a one-message long poll, a count and a top-up; each next one: one receive.
          expect(polls.slice(0, 7)).toEqual([
            'ReceiveMessageCommand wait 20',
            'GetQueueAttributesCommand',
            'ReceiveMessageCommand wait 0',
            'ReceiveMessageCommand wait 0',
            'ReceiveMessageCommand wait 0',
            'ReceiveMessageCommand wait 0',
            'ReceiveMessageCommand wait 0',
          ]);
        },
      );
    } finally {
      polls.stop();
    }
  });

  it('hands a lone message over after one long poll and a count, with no top-up receive', async () => {
    const queues = await createQueues();
    const polls = recordPolls(queues.url);
    // The requests made on the queue before each invocation.
    const before: string[][] = [];
    try {
      await withEventSource(
        queues,
        () => {
          before.push([...polls]);
          return { batchItemFailures: [] };
        },
        async (batches) => {
          await send(queues.url, ['lone']);
          await waitFor(() => batches.length > 0, 'the batch');
          expect(batches.map((b) => b.map((r) => r.body))).toEqual([['lone']]);
          // The message taken is in flight, not on the queue: no receive asks for one that is not
          // there (a short poll that local-aws-sqs cannot fill waits out its 40 ms first).
          expect(before).toEqual([['ReceiveMessageCommand wait 20', 'GetQueueAttributesCommand']]);
        },
      );
    } finally {
      polls.stop();
    }
  });

  const wholeBatchFailures: [string, (records: SQSRecord[]) => unknown][] = [
    [
      'the function errors',
      () => {
        throw new Error('boom');
      },
    ],
    [
      'an itemIdentifier is not in the batch',
      () => ({ batchItemFailures: [{ itemIdentifier: 'no-such-id' }] }),
    ],
    ['an itemIdentifier is empty', () => ({ batchItemFailures: [{ itemIdentifier: '' }] })],
    ['an itemIdentifier is null', () => ({ batchItemFailures: [{ itemIdentifier: null }] })],
  ];

  it.each(wholeBatchFailures)('redelivers the whole batch when %s', async (_case, firstCall) => {
    const queues = await createQueues();
    const bodies = ['x', 'y', 'z'];
    await withEventSource(
      queues,
      (records, call) => (call === 1 ? firstCall(records) : { batchItemFailures: [] }),
      async (batches) => {
        await send(queues.url, bodies);
        await waitFor(() => bodiesSeen(batches).length >= 2 * bodies.length, 'every record twice');
        await waitFor(() => isEmpty(queues.url), 'the main queue to empty');

        expect(batches[0]?.map((r) => r.body).sort()).toEqual(bodies);
        for (const body of bodies) expect(countOf(batches, body)).toBe(2);
        expect(
          batches
            .slice(1)
            .flat()
            .every((r) => r.attributes.ApproximateReceiveCount === '2'),
        ).toBe(true);
        expect(await queueAttribute(queues.dlqUrl, 'ApproximateNumberOfMessages')).toBe('0');
      },
    );
  });
});
