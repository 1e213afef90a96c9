import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SendMessageCommandInput, type SQSClient } from '@aws-sdk/client-sqs';
import type { RunOptions } from 'aws-local-stepfunctions';
import { functionNameOf, type TaskStateInfo } from './definition.ts';
import { isObject } from './protocol.ts';
import { type TaskTokens, taskFailure, UnrecoverableTaskError } from './tokens.ts';

export type TaskHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type TaskHandler = TaskHandlers[string];
type JSONValue = Parameters<TaskHandler>[0];

export interface TaskEnvironment {
  executionArn: string;
  /** What `$$.Task.Token` evaluates to; swapped for a real token in callback tasks. */
  tokenPlaceholder: string;
  tokens: TaskTokens;
  invokeFunction: (functionName: string, payload: unknown) => Promise<unknown>;
  sqs: () => SQSClient;
  isStopped: () => boolean;
  log: (line: string) => void;
}

/** A handler per Task state, so that no Task reaches the library's own AWS Lambda client. */
export function buildTaskHandlers(tasks: Map<string, TaskStateInfo>, env: TaskEnvironment): TaskHandlers {
  const handlers: TaskHandlers = {};
  for (const task of tasks.values()) {
    handlers[task.name] = async (input) => {
      // After StopExecution the library still finishes (and may retry) the state in flight.
      if (env.isStopped()) throw new UnrecoverableTaskError('The execution is no longer running');
      return toJSON(await runTask(task, input, env));
    };
  }
  return handlers;
}

async function runTask(task: TaskStateInfo, input: JSONValue, env: TaskEnvironment): Promise<unknown> {
  const { target } = task;
  switch (target.kind) {
    case 'function':
      return invoke(env, target.functionName, input);
    case 'lambda:invoke': {
      const params = requireParams(task, input);
      const functionName =
        typeof params.FunctionName === 'string' ? functionNameOf(params.FunctionName) : undefined;
      if (!functionName)
        throw new UnrecoverableTaskError(`Task ${task.name}: Parameters.FunctionName is missing`);
      const payload = params.Payload ?? {};
      if (target.callback) return withTaskToken(task, env, payload, (p) => invoke(env, functionName, p));
      if (params.InvocationType === 'Event') {
        invoke(env, functionName, payload).catch((error: unknown) =>
          env.log(`async invoke of ${functionName} from ${task.name} failed: ${String(error)}`),
        );
        return lambdaOutput('', 202);
      }
      return lambdaOutput(await invoke(env, functionName, payload), 200);
    }
    case 'sqs:sendMessage': {
      const params = requireParams(task, input);
      if (target.callback) return withTaskToken(task, env, params, (p) => sendMessage(task, env, p));
      return sendMessage(task, env, params);
    }
    case 'unsupported':
      throw new UnrecoverableTaskError(
        `Task ${task.name}: resource ${task.resource} is not supported locally`,
      );
  }
}

/**
 * The callback pattern. The library does not know `$$.Task.Token`, so the execution's context
 * carries a placeholder that is replaced here by a fresh token per attempt (Map iterations and
 * retries each get their own, as in AWS). The token is registered before delivery because the
 * receiver may answer before the delivery call returns.
 */
async function withTaskToken(
  task: TaskStateInfo,
  env: TaskEnvironment,
  payload: unknown,
  deliver: (payload: unknown) => Promise<unknown>,
): Promise<unknown> {
  const { token, outcome } = env.tokens.create(env.executionArn, task.heartbeatSeconds, task.timeoutSeconds);
  try {
    await deliver(replaceText(payload, env.tokenPlaceholder, token));
  } catch (error) {
    // An answer that already arrived wins over a delivery failure.
    if (env.tokens.abandon(token)) throw error;
  }
  return outcome;
}

async function invoke(env: TaskEnvironment, functionName: string, payload: unknown): Promise<unknown> {
  try {
    return await env.invokeFunction(functionName, payload);
  } catch (error) {
    // Rebuilt so only name and message reach the library: it would prefer an `error.cause` object
    // over the message as the Cause, and honour retry flags a foreign error might carry.
    if (error instanceof Error) throw taskFailure(error.name, error.message);
    throw taskFailure('Error', String(error));
  }
}

async function sendMessage(task: TaskStateInfo, env: TaskEnvironment, params: unknown): Promise<unknown> {
  if (!isObject(params) || typeof params.QueueUrl !== 'string') {
    throw new UnrecoverableTaskError(`Task ${task.name}: Parameters.QueueUrl is missing`);
  }
  const body = params.MessageBody;
  const command: SendMessageCommandInput = {
    QueueUrl: params.QueueUrl,
    // Step Functions serialises a JSON MessageBody itself.
    MessageBody: typeof body === 'string' ? body : JSON.stringify(body ?? null),
  };
  if (typeof params.DelaySeconds === 'number') command.DelaySeconds = params.DelaySeconds;
  if (typeof params.MessageGroupId === 'string') command.MessageGroupId = params.MessageGroupId;
  if (typeof params.MessageDeduplicationId === 'string') {
    command.MessageDeduplicationId = params.MessageDeduplicationId;
  }
  if (isObject(params.MessageAttributes)) {
    command.MessageAttributes = params.MessageAttributes as SendMessageCommandInput['MessageAttributes'];
  }
  try {
    const result = await env.sqs().send(new SendMessageCommand(command));
    return {
      MD5OfMessageBody: result.MD5OfMessageBody,
      MessageId: result.MessageId,
      SdkHttpMetadata: { HttpStatusCode: 200 },
      SdkResponseMetadata: { RequestId: result.$metadata.requestId ?? randomUUID() },
    };
  } catch (error) {
    if (error instanceof Error) throw taskFailure(`SQS.${error.name}`, error.message);
    throw taskFailure('SQS.Error', String(error));
  }
}

/** The envelope AWS puts around a function's result in the lambda:invoke integration. */
function lambdaOutput(payload: unknown, statusCode: number): Record<string, unknown> {
  return {
    ExecutedVersion: '$LATEST',
    Payload: payload ?? null,
    SdkHttpMetadata: { HttpStatusCode: statusCode },
    SdkResponseMetadata: { RequestId: randomUUID() },
    StatusCode: statusCode,
  };
}

function requireParams(task: TaskStateInfo, input: JSONValue): Record<string, unknown> {
  if (!isObject(input)) throw new UnrecoverableTaskError(`Task ${task.name}: Parameters must be an object`);
  return input;
}

function replaceText(value: unknown, search: string, replacement: string): unknown {
  if (typeof value === 'string') return value.split(search).join(replacement);
  if (Array.isArray(value)) return value.map((item) => replaceText(item, search, replacement));
  if (isObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, replaceText(v, search, replacement)]),
    );
  }
  return value;
}

/** Results cross a JSON boundary in AWS; doing the same here keeps undefined and class instances out. */
function toJSON(value: unknown): JSONValue {
  const text = JSON.stringify(value);
  return text === undefined ? null : (JSON.parse(text) as JSONValue);
}
