import {
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import type { GuestAnswer } from '../guest/calls.ts';

// Workflow steps that wait for a guest (waitForTaskToken) register their task token on the
// instance item, under the order's operation id. The conductor then knows whom to answer and
// whom to keep alive:
// - each guest heartbeat becomes SendTaskHeartbeat for every waiting token, so a state's
//   HeartbeatSeconds fails it as soon as its guest goes silent, not at its full timeout;
// - a retried step gets a new token (as in AWS) but keeps the operation id, so the guest runs the
//   order once and its answer goes to the newest token; an answer that came back while no token
//   was alive is kept here and handed over by the retry itself.

const sfn = new SFNClient({});

export interface WaitingTask {
  token: string;
  method: string;
  since: string;
  /** The guest's answer, kept only when no live token could take it. */
  answer?: GuestAnswer;
}

export type WaitingTasks = Record<string, WaitingTask>;

const table = () => config.instancesTable;
const key = (projectId: string, instanceId: string) => ({ project_id: projectId, id: instanceId });

function isConditionFailure(err: unknown): boolean {
  return (err as Error).name === 'ConditionalCheckFailedException';
}

/**
 * Registers `token` as the one waiting for `operationId` (keeping an answer already recorded)
 * and returns the entry as it now stands; undefined when the instance is gone.
 */
export async function registerWaitingTask(
  projectId: string,
  instanceId: string,
  operationId: string,
  token: string,
  method: string,
  /**
   * Whether the item, as the caller last read it, had a map of waiting tasks: the write that fits
   * goes first. A new instance has none, and its prepare (a create waits on this step) was two
   * writes, the first one failing its condition.
   */
  hadMap = true,
): Promise<WaitingTask | undefined> {
  const entry: WaitingTask = { token, method, since: troveTime() };
  // The usual case, an operation's first token, is one write: the entry into the map, or the map
  // with the entry when the item has none yet.
  const firstWrites = [
    {
      UpdateExpression: 'SET waiting_tasks.#op = :entry',
      ConditionExpression: 'attribute_exists(waiting_tasks) AND attribute_not_exists(waiting_tasks.#op)',
      ExpressionAttributeNames: { '#op': operationId },
      ExpressionAttributeValues: { ':entry': entry },
    },
    {
      UpdateExpression: 'SET waiting_tasks = :map',
      ConditionExpression: 'attribute_exists(id) AND attribute_not_exists(waiting_tasks)',
      ExpressionAttributeValues: { ':map': { [operationId]: entry } },
    },
  ];
  if (!hadMap) firstWrites.reverse();
  for (const write of firstWrites) {
    try {
      await documents.send(
        new UpdateCommand({ TableName: table(), Key: key(projectId, instanceId), ...write }),
      );
      return entry;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
  // Otherwise (an entry there already: a retried step; or the instance gone), three small writes,
  // because one update expression cannot both create a map and set a path inside it. Between the
  // second and the third, the answer of this operation's earlier token may forget its entry
  // (forgetWaitingTask: an order sent again after a restart, or delivered twice); the third then
  // finds no entry to set the token in, and the entry is made again.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await documents.send(
        new UpdateCommand({
          TableName: table(),
          Key: key(projectId, instanceId),
          UpdateExpression: 'SET waiting_tasks = if_not_exists(waiting_tasks, :empty)',
          ConditionExpression: 'attribute_exists(id)',
          ExpressionAttributeValues: { ':empty': {} },
        }),
      );
      await documents.send(
        new UpdateCommand({
          TableName: table(),
          Key: key(projectId, instanceId),
          UpdateExpression: 'SET waiting_tasks.#op = if_not_exists(waiting_tasks.#op, :entry)',
          ConditionExpression: 'attribute_exists(id)',
          ExpressionAttributeNames: { '#op': operationId },
          ExpressionAttributeValues: { ':entry': entry },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) return undefined; // the instance is gone
      throw err;
    }
    try {
      const out = await documents.send(
        new UpdateCommand({
          TableName: table(),
          Key: key(projectId, instanceId),
          UpdateExpression: 'SET waiting_tasks.#op.#token = :token',
          ConditionExpression: 'attribute_exists(waiting_tasks.#op)',
          ExpressionAttributeNames: { '#op': operationId, '#token': 'token' },
          ExpressionAttributeValues: { ':token': token },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return (out.Attributes?.waiting_tasks as WaitingTasks | undefined)?.[operationId];
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      // Forgotten meanwhile (or the instance is gone: the next first write says so).
    }
  }
  throw new Error(
    `the waiting task of operation ${operationId} kept being forgotten while it was registered`,
  );
}

/** Keeps an answer that found no live token, and returns the token registered meanwhile, if any. */
export async function keepAnswer(
  projectId: string,
  instanceId: string,
  operationId: string,
  answer: GuestAnswer,
): Promise<string | undefined> {
  try {
    const out = await documents.send(
      new UpdateCommand({
        TableName: table(),
        Key: key(projectId, instanceId),
        UpdateExpression: 'SET waiting_tasks.#op.answer = :answer',
        ConditionExpression: 'attribute_exists(waiting_tasks.#op)',
        ExpressionAttributeNames: { '#op': operationId },
        ExpressionAttributeValues: { ':answer': answer },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return (out.Attributes?.waiting_tasks as WaitingTasks | undefined)?.[operationId]?.token;
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

/** Forgets a waiting task, unless another token took its place meanwhile. */
export async function forgetWaitingTask(
  projectId: string,
  instanceId: string,
  operationId: string,
  token: string,
): Promise<void> {
  try {
    await documents.send(
      new UpdateCommand({
        TableName: table(),
        Key: key(projectId, instanceId),
        UpdateExpression: 'REMOVE waiting_tasks.#op',
        ConditionExpression: 'waiting_tasks.#op.#token = :token',
        ExpressionAttributeNames: { '#op': operationId, '#token': 'token' },
        ExpressionAttributeValues: { ':token': token },
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
}

function isGoneToken(err: unknown): boolean {
  return err instanceof TaskDoesNotExist || err instanceof InvalidToken || err instanceof TaskTimedOut;
}

/** Hands a guest's answer to a waiting state; false when that state no longer waits. */
export async function deliverAnswer(token: string, operation: string, answer: GuestAnswer): Promise<boolean> {
  try {
    if (answer.ok) {
      await sfn.send(
        new SendTaskSuccessCommand({
          taskToken: token,
          output: JSON.stringify({ operation, result: answer.result ?? null }),
        }),
      );
    } else {
      await sfn.send(
        new SendTaskFailureCommand({
          taskToken: token,
          error: `Guest.${answer.error?.type ?? 'Error'}`.slice(0, 256),
          cause: (answer.error?.message ?? `${operation} failed on the guest`).slice(0, 32_000),
        }),
      );
    }
    return true;
  } catch (err) {
    if (isGoneToken(err)) return false;
    throw err;
  }
}

/** A guest heartbeat keeps every state waiting on that guest alive; dead tokens are dropped. */
export async function keepWaitingTasksAlive(
  projectId: string,
  instanceId: string,
  waiting: WaitingTasks | undefined,
): Promise<void> {
  for (const [operationId, task] of Object.entries(waiting ?? {})) {
    // An entry holding an answer waits for its step's retry, which hands the answer over.
    if (task.answer) continue;
    try {
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: task.token }));
    } catch (err) {
      if (!isGoneToken(err)) throw err;
      await forgetWaitingTask(projectId, instanceId, operationId, task.token);
    }
  }
}
