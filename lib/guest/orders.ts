import { createHash } from 'node:crypto';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';

// Which instance each order went to. A guest's signature proves only who sent a reply, not that
// the order it answers was its own: without this record, a guest that learned another
// instance's task token could complete or fail that instance's workflow with its own key.
// The record holds the instance and hashes of the task tokens (never a token itself), and the
// conductor acts on a reply only when both match (lib/conductor/apply.ts). Guests cannot write
// here (only the control plane's functions can).

/** Orders are useless after a day (the guest queue's retention); the record outlives that. */
const ORDER_TTL_SECONDS = 2 * 86_400;

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');
const orderKey = (operationId: string) => ({ id: `order#${operationId}` });

export async function recordOrder(
  instanceId: string,
  operationId: string,
  method: string,
  replyToken?: string,
): Promise<void> {
  // A retried step sends the same operation with a new token: the hashes accumulate (the guest
  // answers an operation once, with whichever token it saw first), the instance never changes.
  await documents.send(
    new UpdateCommand({
      TableName: config.operationsTable,
      Key: orderKey(operationId),
      UpdateExpression: `SET instance_id = :i, #m = :m, expires_at = :e${replyToken ? ' ADD token_hashes :h' : ''}`,
      ConditionExpression: 'attribute_not_exists(instance_id) OR instance_id = :i',
      ExpressionAttributeNames: { '#m': 'method' },
      ExpressionAttributeValues: {
        ':i': instanceId,
        ':m': method,
        ':e': Math.floor(Date.now() / 1000) + ORDER_TTL_SECONDS,
        ...(replyToken ? { ':h': new Set([tokenHash(replyToken)]) } : {}),
      },
    }),
  );
}

/**
 * True when the operation was ordered from this instance and, for a workflow's order, the
 * reply carries the very token the order was sent with.
 */
export async function replyMatchesOrder(
  instanceId: string,
  operationId: string,
  replyToken?: string,
): Promise<boolean> {
  const out = await documents.send(
    new GetCommand({ TableName: config.operationsTable, Key: orderKey(operationId), ConsistentRead: true }),
  );
  const order = out.Item;
  if (!order || order.instance_id !== instanceId) return false;
  const hashes = order.token_hashes instanceof Set ? (order.token_hashes as Set<string>) : undefined;
  // A synchronous call's order has no token, and its reply must carry none.
  return replyToken ? Boolean(hashes?.has(tokenHash(replyToken))) : !hashes;
}
