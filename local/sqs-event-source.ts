import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import type { Message, MessageAttributeValue, SQSClient } from '@aws-sdk/client-sqs';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSMessageAttribute, SQSRecord, SQSRecordAttributes } from 'aws-lambda';

export interface SqsEventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Goes into each record's eventSourceARN. */
  queueArn: string;
  functionName: string;
  /** Default 10, as Lambda; above 10 needs a batching window, as Lambda. */
  batchSize?: number;
  maximumBatchingWindowSeconds?: number;
  /** functionResponseType ReportBatchItemFailures. */
  reportBatchItemFailures?: boolean;
  /** Independent poll loops, each with a batch in flight (Lambda starts with five); default 1. */
  concurrency?: number;
  region?: string;
  /** Resolves with the handler's result, rejects when the function errors. */
  invoke: (functionName: string, event: SQSEvent) => Promise<unknown>;
  log?: (line: string) => void;
}

const MAX_PER_RECEIVE = 10;
const LONG_POLL_SECONDS = 20;
const BACKOFF_MS = [250, 500, 1000, 2000];
const OPTIONAL_ATTRIBUTES = [
  'AWSTraceHeader',
  'SequenceNumber',
  'MessageGroupId',
  'MessageDeduplicationId',
  'DeadLetterQueueSourceArn',
] as const;

/** Drives one function from one queue with the semantics of Lambda's SQS event source mapping. */
export class SqsEventSource {
  readonly #opts: SqsEventSourceOptions;
  readonly #batchSize: number;
  readonly #windowMs: number;
  readonly #concurrency: number;
  readonly #log: (line: string) => void;
  #controller: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: SqsEventSourceOptions) {
    this.#opts = opts;
    this.#batchSize = opts.batchSize ?? MAX_PER_RECEIVE;
    const window = opts.maximumBatchingWindowSeconds ?? 0;
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1 || this.#batchSize > 10_000) {
      throw new RangeError(`batchSize must be an integer from 1 to 10000, got ${this.#batchSize}`);
    }
    if (!(window >= 0 && window <= 300)) {
      throw new RangeError(`maximumBatchingWindowSeconds must be from 0 to 300, got ${window}`);
    }
    if (this.#batchSize > MAX_PER_RECEIVE && window < 1) {
      throw new RangeError(
        'a batchSize above 10 needs maximumBatchingWindowSeconds of at least 1, as in Lambda',
      );
    }
    this.#windowMs = window * 1000;
    this.#concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1 || this.#concurrency > 100) {
      throw new RangeError(`concurrency must be an integer from 1 to 100, got ${this.#concurrency}`);
    }
    const name = `[sqs ${opts.queueArn.split(':').pop()} -> ${opts.functionName}]`;
    const log = opts.log ?? ((line: string) => console.error(line));
    this.#log = (line) => log(`${name} ${line}`);
  }

  start(): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    const loops = Array.from({ length: this.#concurrency }, () => this.#run(controller.signal));
    this.#loop = Promise.all(loops).then(() => undefined);
  }

  /** Resolves once the batches in flight, if any, have been invoked and settled. */
  async stop(): Promise<void> {
    const loop = this.#loop;
    this.#controller?.abort();
    this.#loop = undefined;
    this.#controller = undefined;
    await loop;
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let lastError = '';
    let full = false;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        messages = full ? await this.#next() : [];
        if (messages.length === 0) messages = await this.#collect(signal);
        full = messages.length >= this.#batchSize;
      } catch (err) {
        if (signal.aborted) break;
        const delay = BACKOFF_MS[Math.min(failures++, BACKOFF_MS.length - 1)];
        // A stopped server or a missing queue fails the same way every time; say so once.
        const error = describe(err);
        if (error !== lastError) this.#log(`receive failed, retrying with backoff: ${error}`);
        lastError = error;
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (failures > 0) this.#log(`receiving again after ${failures} failed attempt(s)`);
      failures = 0;
      lastError = '';
      if (messages.length > 0) await this.#process(messages);
    }
  }

  /**
   * After a full batch the queue most likely holds another: one receive of a whole batch, which
   * local-aws-sqs answers at once when it can fill it (as AWS does), instead of a one-message long
   * poll, a count and a top-up. Half the requests per batch under a backlog (a fleet's heartbeats),
   * whose CPU the conductor's table shares on a small host. Less than a batch there: what came
   * (after local-aws-sqs's 40 ms short poll), and back to the long poll.
   */
  async #next(): Promise<Message[]> {
    if (this.#batchSize > MAX_PER_RECEIVE || this.#windowMs > 0) return [];
    return this.#receive(this.#batchSize, 0, undefined);
  }

  async #collect(signal: AbortSignal): Promise<Message[]> {
    // local-aws-sqs keeps a long poll open until it holds MaxNumberOfMessages (AWS answers as soon as
    // any message is there), so wait for a single message and top the batch up afterwards.
    const first = await this.#receive(1, LONG_POLL_SECONDS, signal);
    if (first.length === 0) return first;
    // Keyed by id: should a visibility timeout lapse while we gather, the later receipt is the live one.
    const batch = new Map(first.map((m) => [m.MessageId, m]));
    const deadline = Date.now() + this.#windowMs;
    try {
      while (batch.size < this.#batchSize) {
        const wait = Math.min(LONG_POLL_SECONDS, Math.ceil(Math.max(0, deadline - Date.now()) / 1000));
        let want = Math.min(MAX_PER_RECEIVE, this.#batchSize - batch.size);
        if (wait === 0) {
          // A short poll in local-aws-sqs lasts 40 ms unless it fills MaxNumberOfMessages (AWS
          // answers at once): that was 40 ms added to every batch, a create's prepare answer
          // among them. Asked only for what the queue holds, it answers at its next 10 ms tick.
          want = Math.min(want, await this.#visible());
          if (want === 0) break;
        }
        // A short poll is not aborted: the server would still take messages for the dropped request.
        const more = await this.#receive(want, wait, wait > 0 ? signal : undefined);
        for (const m of more) batch.set(m.MessageId, m);
        if (Date.now() >= deadline) break;
      }
    } catch (err) {
      // What we already hold is invisible on the queue; invoking with it beats waiting out its timeout.
      if (!signal.aborted) this.#log(`receive failed while filling a batch: ${describe(err)}`);
    }
    return [...batch.values()];
  }

  /**
   * The messages the queue holds that a receive could take now. local-aws-sqs counts the messages
   * in flight in ApproximateNumberOfMessages too (AWS counts only the visible ones), so the batch
   * just taken made a lone message look like two: the top-up then asked for one the queue did not
   * have, and its short poll waited out its 40 ms. That was 40-45 ms of every lone report's way to
   * the conductor, a create's prepare answer among them. Those in flight are taken off here.
   */
  async #visible(): Promise<number> {
    const out = await this.#opts.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.#opts.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const count = (name: 'ApproximateNumberOfMessages' | 'ApproximateNumberOfMessagesNotVisible') =>
      Number(out.Attributes?.[name] ?? 0) || 0;
    return Math.max(0, count('ApproximateNumberOfMessages') - count('ApproximateNumberOfMessagesNotVisible'));
  }

  async #receive(max: number, waitSeconds: number, signal: AbortSignal | undefined): Promise<Message[]> {
    const command = new ReceiveMessageCommand({
      QueueUrl: this.#opts.queueUrl,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: waitSeconds,
      // local-aws-sqs reads only the older AttributeNames; AWS takes both.
      AttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    });
    const out = await this.#opts.sqs.send(command, { abortSignal: signal });
    return out.Messages ?? [];
  }

  async #process(messages: Message[]): Promise<void> {
    const { functionName, queueArn, region = 'us-east-1' } = this.#opts;
    const records = messages.map((m) => toRecord(m, queueArn, region));
    let result: unknown;
    try {
      result = await this.#opts.invoke(functionName, { Records: records });
    } catch (err) {
      this.#log(`${records.length} record(s) failed, left for redelivery: ${describe(err)}`);
      return;
    }
    let failed = new Set<string>();
    if (this.#opts.reportBatchItemFailures) {
      const parsed = batchItemFailures(result, new Set(records.map((r) => r.messageId)));
      if (!parsed) {
        this.#log(`invalid batchItemFailures, whole batch left for redelivery: ${inspect(result)}`);
        return;
      }
      failed = parsed;
    }
    await this.#delete(records.filter((r) => !failed.has(r.messageId)));
  }

  async #delete(records: SQSRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += MAX_PER_RECEIVE) {
      const chunk = records.slice(i, i + MAX_PER_RECEIVE);
      const Entries = chunk.map((r, n) => ({ Id: String(n), ReceiptHandle: r.receiptHandle }));
      try {
        const out = await this.#opts.sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: this.#opts.queueUrl, Entries }),
        );
        for (const f of out.Failed ?? []) {
          this.#log(`delete of ${chunk[Number(f.Id)]?.messageId} failed: ${f.Code} ${f.Message ?? ''}`);
        }
      } catch (err) {
        this.#log(`delete of ${chunk.length} record(s) failed: ${describe(err)}`);
      }
    }
  }
}

/**
 * Lambda's reading of a partial batch response: the ids to keep on the queue, or undefined when Lambda
 * would fail the whole batch (unparseable response, empty or unknown itemIdentifier).
 */
function batchItemFailures(result: unknown, batch: ReadonlySet<string>): Set<string> | undefined {
  if (result === null || result === undefined) return new Set();
  if (typeof result !== 'object' || Array.isArray(result)) return undefined;
  const list = 'batchItemFailures' in result ? result.batchItemFailures : undefined;
  if (list === null || list === undefined) return new Set();
  if (!Array.isArray(list)) return undefined;
  const ids = new Set<string>();
  for (const item of list) {
    const id: unknown =
      typeof item === 'object' && item !== null && 'itemIdentifier' in item ? item.itemIdentifier : undefined;
    if (typeof id !== 'string' || !batch.has(id)) return undefined;
    ids.add(id);
  }
  return ids;
}

function toRecord(m: Message, eventSourceARN: string, awsRegion: string): SQSRecord {
  const a = m.Attributes ?? {};
  const attributes: SQSRecordAttributes = {
    ApproximateReceiveCount: a.ApproximateReceiveCount ?? '',
    SentTimestamp: a.SentTimestamp ?? '',
    SenderId: a.SenderId ?? '',
    ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? '',
  };
  for (const key of OPTIONAL_ATTRIBUTES) {
    const value = a[key];
    if (value !== undefined) attributes[key] = value;
  }
  const messageAttributes = Object.fromEntries(
    Object.entries(m.MessageAttributes ?? {}).map(([name, v]) => [name, toLambdaAttribute(v)]),
  );
  // Lambda sends md5OfMessageAttributes: null when there are none; SQSRecord's type only allows omitting it.
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes,
    messageAttributes,
    ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion,
  };
}

function toLambdaAttribute(v: MessageAttributeValue): SQSMessageAttribute {
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  return {
    ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
    ...(v.BinaryValue !== undefined ? { binaryValue: base64(v.BinaryValue) } : {}),
    stringListValues: v.StringListValues ?? [],
    binaryListValues: (v.BinaryListValues ?? []).map(base64),
    dataType: v.DataType ?? 'String',
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
