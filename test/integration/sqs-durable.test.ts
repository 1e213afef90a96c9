import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  type Message,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../local/ports.ts';
import { startSqs } from '../../local/sqs.ts';
import { waitUntil } from '../../local/wait.ts';

// The embedded SQS server keeps queues and messages across a restart of the local cloud: what a
// client was told is stored (created, sent, deleted) is what it finds after the restart.

type Server = Awaited<ReturnType<typeof startSqs>>;
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

let dataDir = '';
let port = 0;
const running: Server[] = [];
const clients: SQSClient[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'troveless-sqs-'));
  port = await freePort();
});

afterEach(async () => {
  for (const server of running.splice(0)) await server.close();
  for (const client of clients.splice(0)) client.destroy();
  await rm(dataDir, { recursive: true, force: true });
});

afterAll(() => rm(dataDir, { recursive: true, force: true }));

/** A server on the same port and data directory as any before it, as `npm start` runs one. */
async function boot(compactBytes?: number): Promise<{ server: Server; sqs: SQSClient }> {
  const server = await startSqs({ port, dataDir, compactBytes });
  running.push(server);
  const sqs = new SQSClient({ endpoint: server.endpoint, region: 'us-east-1', credentials });
  clients.push(sqs);
  return { server, sqs };
}

async function restart(server: Server): Promise<SQSClient> {
  await server.close();
  running.splice(running.indexOf(server), 1);
  return (await boot()).sqs;
}

async function receiveAll(sqs: SQSClient, url: string, expected: number): Promise<Message[]> {
  const got: Message[] = [];
  await waitUntil(`${expected} messages`, async () => {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, expected - got.length),
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
        // local-aws-sqs reads the older name of MessageSystemAttributeNames.
        AttributeNames: ['All'],
      }),
    );
    got.push(...(out.Messages ?? []));
    return got.length >= expected ? true : undefined;
  });
  return got;
}

describe('durable embedded SQS', () => {
  it('keeps queues, attributes, tags and undeleted messages across a restart', async () => {
    const { server, sqs } = await boot();
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'orders-dlq' }));
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    const redrive = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 });
    const { QueueUrl: url } = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'orders',
        Attributes: { VisibilityTimeout: '300', MessageRetentionPeriod: '86400', RedrivePolicy: redrive },
        tags: { owner: 'instance-1' },
      }),
    );
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { DelaySeconds: '0' } }));
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'deleted before the restart',
        MessageAttributes: { kind: { DataType: 'String', StringValue: 'a' } },
      }),
    );
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: '1', MessageBody: 'in flight at the restart' },
          {
            Id: '2',
            MessageBody: 'never received',
            MessageAttributes: { kind: { DataType: 'String', StringValue: 'c' } },
          },
        ],
      }),
    );
    // Taken in order: the first is deleted, the second is left in flight (VisibilityTimeout 300).
    const [first] = await receiveAll(sqs, url!, 1);
    expect(first?.MessageId).toBe(sent.MessageId);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first?.ReceiptHandle }));
    const [inFlight] = await receiveAll(sqs, url!, 1);
    expect(inFlight?.Body).toBe('in flight at the restart');
    const gone = await sqs.send(new CreateQueueCommand({ QueueName: 'deleted-queue' }));
    await sqs.send(new DeleteQueueCommand({ QueueUrl: gone.QueueUrl }));

    const after = await restart(server);
    expect((await after.send(new ListQueuesCommand({}))).QueueUrls?.sort()).toEqual(
      [dlq.QueueUrl, url].sort(),
    );
    await expect(after.send(new GetQueueUrlCommand({ QueueName: 'deleted-queue' }))).rejects.toBeInstanceOf(
      QueueDoesNotExist,
    );
    const attributes = (
      await after.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))
    ).Attributes;
    expect(attributes).toMatchObject({ VisibilityTimeout: '300', MessageRetentionPeriod: '86400' });
    expect(JSON.parse(attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: dlqArn,
      maxReceiveCount: 5,
    });
    expect((await after.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags).toEqual({
      owner: 'instance-1',
    });

    // The message in flight is visible again at once (at-least-once), with its receive counted.
    const back = await receiveAll(after, url!, 2);
    expect(back.map((m) => m.Body).sort()).toEqual(['in flight at the restart', 'never received']);
    const again = back.find((m) => m.Body === 'in flight at the restart');
    expect(again?.MessageId).toBe(inFlight?.MessageId);
    expect(again?.Attributes?.ApproximateReceiveCount).toBe('2');
    const never = back.find((m) => m.Body === 'never received');
    expect(never?.MessageAttributes?.kind?.StringValue).toBe('c');
    expect(never?.Attributes?.ApproximateReceiveCount).toBe('1');
  });

  it('keeps what was acknowledged when the server dies without closing', async () => {
    const { sqs } = await boot();
    const { QueueUrl: url } = await sqs.send(new CreateQueueCommand({ QueueName: 'crash' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'acknowledged' }));
    // The first server is left as it is (no close, no flush), as after a kill; a second one
    // starts from the same directory.
    port = await freePort();
    const { sqs: second } = await boot();
    const moved = url!.replace(/:\d+\//, `:${port}/`);
    const [message] = await receiveAll(second, moved, 1);
    expect(message?.Body).toBe('acknowledged');
  });

  it('keeps a message redriven to its dead-letter queue there', async () => {
    const { server, sqs } = await boot();
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'poison-dlq' }));
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    const { QueueUrl: url } = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'poison',
        Attributes: {
          VisibilityTimeout: '1',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 }),
        },
      }),
    );
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));
    await receiveAll(sqs, url!, 1);
    // Not deleted: once its visibility timeout ends, local-aws-sqs moves it to the dead-letter queue.
    await waitUntil('redriven', async () => {
      const out = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: dlq.QueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages'],
        }),
      );
      return out.Attributes?.ApproximateNumberOfMessages === '1' ? true : undefined;
    });

    const after = await restart(server);
    const counts = async (queueUrl: string) =>
      (
        await after.send(
          new GetQueueAttributesCommand({
            QueueUrl: queueUrl,
            AttributeNames: ['ApproximateNumberOfMessages'],
          }),
        )
      ).Attributes?.ApproximateNumberOfMessages;
    expect(await counts(url!)).toBe('0');
    expect(await counts(dlq.QueueUrl!)).toBe('1');
    const [dead] = await receiveAll(after, dlq.QueueUrl!, 1);
    expect(dead?.Body).toBe('poison');
  });

  it('compacts its journal: many messages sent and deleted leave a small file and the same state', async () => {
    const compactBytes = 16 * 1024;
    const { server, sqs } = await boot(compactBytes);
    const { QueueUrl: url } = await sqs.send(new CreateQueueCommand({ QueueName: 'busy' }));
    for (let i = 0; i < 120; i++) {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: url, MessageBody: `message ${i} ${'x'.repeat(150)}` }),
      );
      const [m] = await receiveAll(sqs, url!, 1);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m?.ReceiptHandle }));
    }
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'the one left' }));
    // 120 x 3 entries of 150+ bytes were written; compaction keeps the file near the live state.
    expect(statSync(join(dataDir, 'journal.ndjson')).size).toBeLessThan(2 * compactBytes);
    const after = await restart(server);
    const [left] = await receiveAll(after, url!, 1);
    expect(left?.Body).toBe('the one left');
  });

  it('enqueues a send twice on a queue chosen for duplicates, and no restored message again', async () => {
    const server = await startSqs({ port, dataDir, duplicate: (name) => name.startsWith('twice-') });
    running.push(server);
    const sqs = new SQSClient({ endpoint: server.endpoint, region: 'us-east-1', credentials });
    clients.push(sqs);
    const twice = (await sqs.send(new CreateQueueCommand({ QueueName: 'twice-orders' }))).QueueUrl ?? '';
    const once = (await sqs.send(new CreateQueueCommand({ QueueName: 'once-orders' }))).QueueUrl ?? '';
    await sqs.send(new SendMessageCommand({ QueueUrl: twice, MessageBody: 'order' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: once, MessageBody: 'order' }));
    const count = async (client: SQSClient, url: string) =>
      Number(
        (
          await client.send(
            new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
          )
        ).Attributes?.ApproximateNumberOfMessages,
      );
    expect(await count(sqs, twice)).toBe(2);
    expect(await count(sqs, once)).toBe(1);
    await server.close();
    running.splice(running.indexOf(server), 1);
    const again = await startSqs({ port, dataDir, duplicate: (name) => name.startsWith('twice-') });
    running.push(again);
    const after = new SQSClient({ endpoint: again.endpoint, region: 'us-east-1', credentials });
    clients.push(after);
    expect(await count(after, twice)).toBe(2);
  });
});
