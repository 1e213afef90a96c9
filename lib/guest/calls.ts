import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { BadRequest, Forbidden, NotFound, NotImplemented, type TroveError } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';
import { unwrapKey } from './keys.ts';
import type { GuestErrorName } from './protocol.ts';
import { sendToGuest } from './queues.ts';
import { encryptFor } from './sealed.ts';

// Trove's synchronous guest calls, in the serverless shape: the handler sends a signed order
// and waits for the answer that the conductor records under the operation id. A guest that does
// not answer in time gets Trove's GuestTimeout, never a hang.

export interface GuestAnswer {
  ok: boolean;
  result?: unknown;
  error?: { type: string; message: string };
}

export async function recordAnswer(
  operationId: string,
  instanceId: string,
  answer: GuestAnswer,
): Promise<void> {
  await documents.send(
    new PutCommand({
      TableName: config.operationsTable,
      Item: {
        id: operationId,
        instance_id: instanceId,
        ...answer,
        expires_at: Math.floor(Date.now() / 1000) + 3600,
      },
    }),
  );
}

export interface CallOptions {
  timeoutSeconds: number;
  /** Arguments that carry passwords: they travel encrypted with the guest's own key. */
  secret?: Record<string, unknown>;
}

export async function callGuest(
  item: InstanceItem,
  method: string,
  args: Record<string, unknown>,
  options: CallOptions,
): Promise<unknown> {
  const key = await unwrapKey(item.wrapped_key);
  const payload = options.secret ? { ...args, sealed: encryptFor(key, options.secret) } : args;
  const operationId = await sendToGuest(key, item.id, method, { ...payload, reply: true });
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let delay = 25;
  while (Date.now() < deadline) {
    const out = await documents.send(
      new GetCommand({ TableName: config.operationsTable, Key: { id: operationId }, ConsistentRead: true }),
    );
    if (out.Item) return settle(out.Item as GuestAnswer & { instance_id: string }, item.id);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
  throw new BadRequest('Timeout trying to connect to the Guest Agent.');
}

/** The guest's error names are Trove's exception names; each keeps Trove's status code. */
const STATUS_OF: Record<GuestErrorName, (message: string) => TroveError> = {
  DatabaseAlreadyExists: (m) => new BadRequest(m),
  UserAlreadyExists: (m) => new BadRequest(m),
  BadRequest: (m) => new BadRequest(m),
  DatabaseNotFound: (m) => new NotFound(m),
  UserNotFound: (m) => new NotFound(m),
  NotImplemented: (m) => new NotImplemented(m),
  LogNotFound: (m) => new NotFound(m),
  LogAccessForbidden: (m) => new Forbidden(m),
  LogsNotAvailable: (m) => new NotImplemented(m),
};

// An absolute path of two segments or more (a socket, a data directory, a binary), after a
// space, a quote, '(', '=' or ':' or at the start: not a CIDR such as 10.0.0.0/24.
const LOCAL_PATH = /(^|[\s'"`(=:])\/(?:[^\s'"`(),;:/]+\/)+[^\s'"`(),;:]*/g;

/**
 * A guest's error message as the API may show it: the engine's own words, without the paths of
 * the guest's host (its socket, data directory), which tell a client nothing it can act on and
 * an attacker where things live.
 */
export function publicGuestMessage(message: string): string {
  return message.replace(LOCAL_PATH, (_path, before: string) => `${before}(local path)`);
}

function settle(answer: GuestAnswer & { instance_id: string }, instanceId: string): unknown {
  if (answer.instance_id !== instanceId) throw new Error('operation answer belongs to another instance');
  if (answer.ok) return answer.result;
  const type = answer.error?.type ?? 'Error';
  const message = publicGuestMessage(answer.error?.message ?? 'The guest agent reported an error.');
  // Trove maps any other guest error (GuestError) to 400 as well, with the guest's message.
  throw (STATUS_OF[type as GuestErrorName] ?? ((m: string) => new BadRequest(m)))(message);
}
