import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { logger } from '../logger.ts';

// The guest's doorbell (docs/cost.md): orders still travel, and wait, on the instance's own SQS
// queue, but a guest at rest does not long-poll it. It holds a WebSocket connection to the
// doorbell API (API Gateway, billed per connection-minute, nothing per idle second) and the
// control plane rings it (the word `ring`) right after it sends an order; the guest then drains
// its queue. A ring is only a hint: a guest that misses one (its connection was down, the ring
// failed) finds the order at its next poll, which it makes on every (re)connect and at least
// every few minutes at rest. Each instance's connection is an item of the operations table,
// `doorbell#<instance>`, written only by a guest that proved it holds the instance's key.

/** The doorbell's item outlives API Gateway's longest connection (2 h): a crashed guest's goes by TTL. */
const ITEM_TTL_SECONDS = 3 * 3600;

const keyOf = (instanceId: string) => ({ id: `doorbell#${instanceId}` });

export interface Doorbell {
  connectionId: string;
  /** The guest's `sent` of the token that opened it: an older token cannot take the doorbell back. */
  sent: number;
}

let client: ApiGatewayManagementApiClient | undefined;
function management(url: string): ApiGatewayManagementApiClient {
  // API Gateway's management endpoint is the connection URL over HTTPS (HTTP for the local cloud).
  client ??= new ApiGatewayManagementApiClient({ endpoint: url.replace(/^ws/, 'http') });
  return client;
}

/**
 * Records `connectionId` as the instance's doorbell, unless a newer token already holds it (a
 * captured token replayed cannot take the doorbell from the guest). Resolves false then.
 */
export async function openDoorbell(
  projectId: string,
  instanceId: string,
  connectionId: string,
  sent: number,
): Promise<boolean> {
  try {
    await documents.send(
      new PutCommand({
        TableName: config.operationsTable,
        Item: {
          ...keyOf(instanceId),
          project_id: projectId,
          instance_id: instanceId,
          connection_id: connectionId,
          sent,
          expires_at: Math.floor(Date.now() / 1000) + ITEM_TTL_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(id) OR #sent < :sent',
        ExpressionAttributeNames: { '#sent': 'sent' },
        ExpressionAttributeValues: { ':sent': sent },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === 'ConditionalCheckFailedException') return false;
    throw err;
  }
}

/** The instance's doorbell as recorded, if any. */
export async function findDoorbell(instanceId: string): Promise<Doorbell | undefined> {
  if (!config.doorbellUrl) return undefined;
  const out = await documents.send(
    new GetCommand({ TableName: config.operationsTable, Key: keyOf(instanceId), ConsistentRead: true }),
  );
  const item = out.Item;
  return typeof item?.connection_id === 'string' && typeof item.sent === 'number'
    ? { connectionId: item.connection_id, sent: item.sent }
    : undefined;
}

/**
 * Rings the guest's doorbell after an order was sent. Never fails the order: a guest that does not
 * hear it polls its queue anyway (at its next connect, or within its rest poll interval).
 * Resolves with whether the ring reached a connection.
 */
export async function ringDoorbell(instanceId: string, bell: Doorbell | undefined): Promise<boolean> {
  const url = config.doorbellUrl;
  if (!url || !bell) return false;
  const post = new PostToConnectionCommand({
    ConnectionId: bell.connectionId,
    Data: new TextEncoder().encode('ring'),
  });
  // Twice at most: a throttled or failed post (not a gone connection) is worth one more try, since
  // a lost ring costs the order up to the guest's rest poll.
  for (let attempt = 1; ; attempt++) {
    try {
      await management(url).send(post);
      return true;
    } catch (err) {
      // Gone: the guest's connection closed (it connects again and polls then), or is not yet
      // established (API Gateway runs $connect first). The item stays: it is the newest the guest
      // opened, and its next connect replaces it; removing it here could drop a live one's.
      if (err instanceof GoneException || statusOf(err) === 410) return false;
      if (attempt < 2) continue;
      logger.warn('doorbell not rung; the guest finds the order at its next poll', {
        instance_id: instanceId,
        error: (err as Error).message,
      });
      return false;
    }
  }
}

const statusOf = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** Removed with the instance (its last delete step), as its queue is. */
export async function deleteDoorbell(instanceId: string): Promise<void> {
  await documents.send(new DeleteCommand({ TableName: config.operationsTable, Key: keyOf(instanceId) }));
}
