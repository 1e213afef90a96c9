import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { createRequestHandler, type ISqsServerOptions } from 'local-aws-sqs';
import { Journal, type JournalEntry, type StoredQueue } from './sqs-journal.ts';

// local-aws-sqs keeps queues and messages in memory only. This layer records every change it
// makes (through the public parts of its queues: setRecord/newRecord, receive, delete,
// clearRecords, getAttributes) in a journal in the state directory, and rebuilds queues and
// messages from it at start. Messages that were in flight at the restart are visible again at
// once: delivery stays at-least-once, as in SQS.

type Service = ReturnType<typeof createRequestHandler>['service'];
type Queue = Service['Queues'][number];
type MessageRecord = { MessageId: string; attributes: Record<string, string> };
type RecordEntry = { record: MessageRecord } | undefined;

/** Attributes CreateQueue accepts; the rest of GetQueueAttributes is derived. */
const SETTABLE_ATTRIBUTES = [
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'Policy',
  'ReceiveMessageWaitTimeSeconds',
  'VisibilityTimeout',
  'RedrivePolicy',
  'RedriveAllowPolicy',
  'KmsMasterKeyId',
  'KmsDataKeyReusePeriodSeconds',
  'SqsManagedSseEnabled',
  'FifoQueue',
  'ContentBasedDeduplication',
  'DeduplicationScope',
  'FifoThroughputLimit',
];
const SYSTEM_ATTRIBUTES = ['AWSTraceHeader', 'DeadLetterQueueSourceArn'];
/** JSON-protocol actions that change no queue: after these, queues need no comparison. */
const MESSAGE_ACTIONS = new Set([
  'SendMessage',
  'SendMessageBatch',
  'ReceiveMessage',
  'DeleteMessage',
  'DeleteMessageBatch',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
  'GetQueueAttributes',
  'GetQueueUrl',
  'ListQueues',
  'ListQueueTags',
  'ListDeadLetterSourceQueues',
]);

export interface DurableSqsOptions extends ISqsServerOptions {
  dataDir: string;
  /** Journal size at which it is compacted (default 8 MiB). */
  compactBytes?: number;
  log?: (line: string) => void;
  /**
   * Queues every new message of which is enqueued twice, as SQS's at-least-once delivery allows:
   * the e2e cloud turns it on for guest queues so the whole suite runs on duplicates. Production
   * code knows nothing of it.
   */
  duplicate?: (queueName: string) => boolean;
}

export interface DurableSqs {
  service: Service;
  requestHandler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  restored: { queues: number; messages: number };
  close(): void;
}

export function createDurableSqs(opts: DurableSqsOptions): DurableSqs {
  const { dataDir, compactBytes = 8 * 1024 * 1024, log = () => {}, duplicate, ...serverOptions } = opts;
  mkdirSync(dataDir, { recursive: true });
  const journal = new Journal(join(dataDir, 'journal.ndjson'), compactBytes);
  const { state, unreadable } = journal.read();
  if (unreadable) log(`SQS journal: skipped ${unreadable} unreadable line(s)`);
  const expired = state.expire(Date.now());
  if (expired) log(`SQS journal: ${expired} message(s) expired while stopped`);

  // Dead-letter targets are checked again once every queue is back, whatever the order.
  const { service, requestHandler } = restore(serverOptions, [...state.queues.values()], log);
  service.validateDlqDestination = serverOptions.validateDlqDestination ?? true;

  let replaying = true;
  const write = (entry: JournalEntry) => {
    if (replaying) return;
    journal.append(entry);
    state.apply(entry);
    if (journal.needsCompaction) journal.rewrite(state);
  };
  const watched = new WeakSet<Queue>();
  const known = new Map<string, string>();

  const watch = (queue: Queue) => {
    if (watched.has(queue)) return;
    watched.add(queue);
    const newRecord = queue.newRecord;
    // Every message enters a queue here: SendMessage(Batch), restores and dead-letter redrives.
    queue.newRecord = (record: Record<string, unknown>, delay?: number) => {
      const attributes = record.attributes as Record<string, string>;
      const system = Object.fromEntries(
        SYSTEM_ATTRIBUTES.filter((k) => attributes[k] !== undefined).map((k) => [
          k,
          { DataType: 'String', StringValue: attributes[k] as string },
        ]),
      );
      write({
        op: 'send',
        queue: queue.QueueName,
        id: String(record.MessageId),
        body: String(record.MessageBody),
        ...(record.MessageAttributes
          ? { attributes: record.MessageAttributes as Record<string, unknown> }
          : {}),
        ...(Object.keys(system).length ? { system } : {}),
        ...(attributes.MessageGroupId ? { group: attributes.MessageGroupId } : {}),
        ...(attributes.MessageDeduplicationId ? { dedup: attributes.MessageDeduplicationId } : {}),
        sent: Number(attributes.SentTimestamp),
        delaySeconds: delay === undefined || Number.isNaN(delay) ? queue.DelaySeconds : delay,
      });
      return newRecord(record, delay);
    };
    if (duplicate?.(queue.QueueName)) {
      const setRecord = queue.setRecord;
      // A send carries no id; restores and redrives do, and are not sends to duplicate.
      queue.setRecord = (message: Parameters<typeof setRecord>[0], id?: string) => {
        const entry = setRecord(message, id);
        if (!replaying && id === undefined) setRecord(message);
        return entry;
      };
    }
    const receive = queue.receive.bind(queue);
    queue.receive = async (params: unknown) => {
      const records = (await receive(params)) as MessageRecord[];
      for (const r of records) {
        write({ op: 'receive', id: r.MessageId, count: Number(r.attributes.ApproximateReceiveCount) });
      }
      return records;
    };
    const remove = queue.delete.bind(queue);
    queue.delete = (receiptHandle: string) => {
      const deleted = remove(receiptHandle);
      const id = messageIdOf(receiptHandle);
      if (id && state.messages.has(id)) write({ op: 'delete', id });
      return deleted;
    };
    const clear = queue.clearRecords.bind(queue);
    queue.clearRecords = () => {
      clear();
      write({ op: 'purge', queue: queue.QueueName });
    };
  };

  /** Records queues created, changed or deleted since the last look. */
  const syncQueues = () => {
    const present = new Set<string>();
    for (const queue of service.Queues) {
      watch(queue);
      present.add(queue.QueueName);
      const stored = describe(queue);
      const text = JSON.stringify(stored);
      if (known.get(queue.QueueName) === text) continue;
      known.set(queue.QueueName, text);
      write({ op: 'queue', ...stored });
    }
    for (const name of known.keys()) {
      if (present.has(name)) continue;
      known.delete(name);
      write({ op: 'drop', name });
    }
  };

  for (const queue of service.Queues) watch(queue);
  let messages = 0;
  for (const message of state.messages.values()) {
    const queue = service.Queues.find((q) => q.QueueName === message.queue);
    if (!queue) continue;
    const remaining = Math.max(
      0,
      Math.ceil((message.sent + message.delaySeconds * 1000 - Date.now()) / 1000),
    );
    const entry = queue.setRecord(
      {
        MessageBody: message.body,
        MessageAttributes: message.attributes,
        MessageSystemAttributes: message.system,
        MessageGroupId: message.group,
        MessageDeduplicationId: message.dedup,
        DelaySeconds: remaining,
      },
      message.id,
    ) as RecordEntry;
    if (entry) {
      entry.record.attributes.SentTimestamp = String(message.sent);
      entry.record.attributes.ApproximateReceiveCount = String(message.received);
    }
    messages++;
  }
  // Queues whose restore failed are dropped from the state, so the snapshot matches the server.
  for (const name of [...state.queues.keys()]) {
    if (!service.Queues.some((q) => q.QueueName === name)) state.apply({ op: 'drop', name });
  }
  for (const queue of service.Queues) known.set(queue.QueueName, JSON.stringify(describe(queue)));
  journal.rewrite(state);
  replaying = false;

  return {
    service,
    restored: { queues: service.Queues.length, messages },
    requestHandler: (req, res) => {
      const target = req.headers['x-amz-target'];
      const action = typeof target === 'string' ? target.split('.').pop() : undefined;
      if (action === undefined || !MESSAGE_ACTIONS.has(action)) {
        // Recorded before the answer leaves, so an acknowledged CreateQueue is in the journal.
        const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
        res.end = ((...args: unknown[]) => {
          syncQueues();
          return end(...args);
        }) as ServerResponse['end'];
      }
      return requestHandler(req, res);
    },
    close: () => journal.close(),
  };
}

function describe(queue: Queue): StoredQueue {
  const all = (queue.getAttributes(['All']) ?? {}) as Record<string, string | undefined>;
  const attributes: Record<string, string> = {};
  for (const key of SETTABLE_ATTRIBUTES) {
    const value = all[key];
    if (value !== undefined && value !== 'undefined') attributes[key] = value;
  }
  return { name: queue.QueueName, attributes, tags: { ...queue.Tags } };
}

/** local-aws-sqs's receipt handles are base64 of a UUID followed by JSON naming the message. */
function messageIdOf(receiptHandle: string): string | undefined {
  try {
    const text = Buffer.from(receiptHandle, 'base64').toString('utf8');
    const parsed = JSON.parse(text.slice(text.indexOf('{'))) as { MessageId?: unknown };
    return typeof parsed.MessageId === 'string' ? parsed.MessageId : undefined;
  } catch {
    return undefined;
  }
}

/** A server holding the stored queues; a queue local-aws-sqs refuses is reported and left out. */
function restore(options: ISqsServerOptions, queues: StoredQueue[], log: (line: string) => void) {
  type Initial = NonNullable<ISqsServerOptions['queues']>[number];
  const all = queues.map((q) => ({ QueueName: q.name, Attributes: q.attributes, tags: q.tags }) as Initial);
  const create = (initial: Initial[]) =>
    createRequestHandler({ ...options, validateDlqDestination: false, queues: initial });
  try {
    return create(all);
  } catch {
    return create(
      all.filter((q) => {
        try {
          create([q]);
          return true;
        } catch (err) {
          log(`SQS journal: queue ${q.QueueName} could not be restored: ${(err as Error).message}`);
          return false;
        }
      }),
    );
  }
}
