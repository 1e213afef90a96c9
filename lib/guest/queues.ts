import { createHash, randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { config } from '../config.ts';
import { logger } from '../logger.ts';
import { findDoorbell, ringDoorbell } from './doorbell.ts';
import { recordOrder } from './orders.ts';
import { type GuestRequest, nowSeconds, seal } from './protocol.ts';

// One queue per instance (Trove's topic guestagent.<id>): a guest reads only its own orders.
export const sqs = new SQSClient({});

export function guestQueueName(instanceId: string): string {
  return `troveless-${config.stage}-guest-${instanceId}`;
}

export async function createGuestQueue(instanceId: string): Promise<string> {
  const out = await sqs.send(
    new CreateQueueCommand({
      QueueName: guestQueueName(instanceId),
      // Orders are useless after a day; a guest that was away that long gets new ones.
      Attributes: { MessageRetentionPeriod: '86400', VisibilityTimeout: '300' },
      tags: { 'troveless:instance_id': instanceId },
    }),
  );
  return out.QueueUrl ?? '';
}

export async function guestQueueUrl(instanceId: string): Promise<string | undefined> {
  try {
    return (await sqs.send(new GetQueueUrlCommand({ QueueName: guestQueueName(instanceId) }))).QueueUrl;
  } catch (err) {
    if (err instanceof QueueDoesNotExist || (err as Error).name === 'AWS.SimpleQueueService.NonExistentQueue')
      return undefined;
    throw err;
  }
}

/** Idempotent: a queue that is already gone is fine. */
export async function deleteGuestQueue(instanceId: string): Promise<void> {
  const url = await guestQueueUrl(instanceId);
  if (url) await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
}

let conductorUrl: Promise<string> | undefined;
export function conductorQueueUrl(): Promise<string> {
  conductorUrl ??= sqs
    .send(new GetQueueUrlCommand({ QueueName: config.conductorQueue }))
    .then((o) => o.QueueUrl ?? '')
    .catch((err) => {
      conductorUrl = undefined;
      throw err;
    });
  return conductorUrl;
}

/**
 * The id of a workflow's order: from the execution and method when known (a retried step, which
 * gets a new task token, sends the same operation), else from the reply token; a fresh one for a
 * synchronous call.
 */
export function operationIdOf(method: string, executionId?: string, replyToken?: string): string {
  const source = executionId ? `${executionId}\n${method}` : replyToken;
  return source ? createHash('sha256').update(source).digest('hex').slice(0, 32) : randomUUID();
}

/** An order under way: its record and its queue's URL are being asked for; `send` sends it. */
export interface PendingOrder {
  /** Seals and sends the order once its record has landed; resolves with its operation id. */
  send(key: Buffer, args: Record<string, unknown>): Promise<string>;
}

/**
 * Starts an order: its record (what the conductor checks a reply against) and its queue's URL are
 * asked for at once, and a caller may do its own work meanwhile (a workflow step registers the
 * step waiting on the answer): a create's prepare waits on these writes one after the other no
 * more. The record lands before the order is sent, since the reply may come before a later write
 * would. A record whose order is never sent (no queue, a step that found its answer kept) expires
 * with its TTL and matches no reply but its own operation's.
 */
export function beginOrder(
  instanceId: string,
  method: string,
  replyToken?: string,
  operationId?: string,
): PendingOrder {
  const id = operationId ?? operationIdOf(method, undefined, replyToken);
  const ready = Promise.all([
    guestQueueUrl(instanceId),
    recordOrder(instanceId, id, method, replyToken),
    // Read beside the others: the ring after the send is then one request. Not reading it loses
    // only the ring (the guest polls at its next rest poll), said so in the log.
    findDoorbell(instanceId).catch((err: Error) => {
      logger.warn('doorbell not read; the order is sent unrung', {
        instance_id: instanceId,
        error: err.message,
      });
      return undefined;
    }),
  ]);
  // Awaited by send, if it comes: until then a failure is nobody's to report.
  ready.catch(() => {});
  return {
    async send(key, args) {
      const [url, , bell] = await ready;
      if (!url) throw new Error(`The guest queue of instance ${instanceId} does not exist.`);
      const request: GuestRequest = {
        id,
        instance_id: instanceId,
        method,
        args,
        sent: nowSeconds(),
        reply_token: replyToken,
      };
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: seal(key, instanceId, request) }));
      // After the send, never before: a guest that drains on the ring must find the order.
      await ringDoorbell(instanceId, bell);
      return id;
    },
  };
}

/** Sends a signed order to a guest; the guest runs each operation id at most once. */
export async function sendToGuest(
  key: Buffer,
  instanceId: string,
  method: string,
  args: Record<string, unknown>,
  replyToken?: string,
  operationId?: string,
): Promise<string> {
  return beginOrder(instanceId, method, replyToken, operationId).send(key, args);
}
