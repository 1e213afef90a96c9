import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { isObject } from './protocol.ts';

/** How a Task state's Resource is carried out locally. */
export type TaskTarget =
  | { kind: 'function'; functionName: string }
  | { kind: 'lambda:invoke'; callback: boolean }
  | { kind: 'sqs:sendMessage'; callback: boolean }
  | { kind: 'unsupported' };

export interface TaskStateInfo {
  name: string;
  resource: string;
  target: TaskTarget;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
}

export interface PreparedDefinition {
  definition: StateMachineDefinition;
  tasks: Map<string, TaskStateInfo>;
}

// setTimeout holds at most 2^31-1 ms and fires at once for anything longer, so every duration the
// library turns into a timer has to stay under this.
export const MAX_TIMER_SECONDS = Math.floor(0x7fffffff / 1000);

const LAMBDA_FUNCTION_ARN = /^arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:[^:]+(:[^:]+)?$/;
const SERVICE_INTEGRATION_ARN =
  /^arn:aws[a-z-]*:states:[^:]*:[^:]*:([A-Za-z0-9]+):([A-Za-z0-9]+)(?:\.(waitForTaskToken|sync(?::2)?))?$/;

/** The plain function name out of a name, name:qualifier, partial ARN or full ARN. */
export function functionNameOf(ref: string): string | undefined {
  const fromArn = /(?:^|:)function:([^:]+)/.exec(ref);
  if (fromArn) return fromArn[1];
  const name = ref.split(':')[0];
  return name === '' ? undefined : name;
}

export function taskTargetOf(resource: string): TaskTarget {
  if (LAMBDA_FUNCTION_ARN.test(resource)) {
    const functionName = functionNameOf(resource);
    if (functionName) return { kind: 'function', functionName };
  }
  const integration = SERVICE_INTEGRATION_ARN.exec(resource);
  if (integration) {
    const [, service, action, mode] = integration;
    const callback = mode === 'waitForTaskToken';
    if (mode === undefined || callback) {
      if (service === 'lambda' && action === 'invoke') return { kind: 'lambda:invoke', callback };
      if (service === 'sqs' && action === 'sendMessage') return { kind: 'sqs:sendMessage', callback };
    }
  }
  return { kind: 'unsupported' };
}

/**
 * A runnable copy of `original` and its Task states, by name. Task timeouts are rewritten because
 * the library defaults a Task to 60 s (the ASL spec's value) where AWS waits 99999999 s, which
 * would fail any callback task a human or slow agent answers after a minute.
 */
export function prepareDefinition(
  machineName: string,
  original: Record<string, unknown>,
): PreparedDefinition {
  const definition = structuredClone(original);
  if (!isObject(definition.States) || typeof definition.StartAt !== 'string') {
    throw new Error(`State machine ${machineName}: definition needs StartAt and States`);
  }
  const tasks = new Map<string, TaskStateInfo>();
  clampTimeout(definition);
  walkStates(machineName, definition, tasks);
  // The rest of the shape is checked by the library's validator when the machine is built.
  return { definition: definition as unknown as StateMachineDefinition, tasks };
}

function walkStates(machineName: string, scope: unknown, tasks: Map<string, TaskStateInfo>): void {
  if (!isObject(scope) || !isObject(scope.States)) return;
  for (const [name, state] of Object.entries(scope.States)) {
    if (!isObject(state)) continue;
    if (state.Type === 'Task') {
      // Task overrides are keyed by state name across all nesting levels; AWS also requires
      // state names to be unique in the whole machine, so a clash is a broken definition.
      if (tasks.has(name))
        throw new Error(`State machine ${machineName}: duplicate Task state name '${name}'`);
      tasks.set(name, describeTask(machineName, name, state));
      if (state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
        state.TimeoutSeconds = MAX_TIMER_SECONDS;
      }
      clampTimeout(state);
    } else if (state.Type === 'Parallel' && Array.isArray(state.Branches)) {
      for (const branch of state.Branches) walkStates(machineName, branch, tasks);
    } else if (state.Type === 'Map') {
      walkStates(machineName, state.ItemProcessor ?? state.Iterator, tasks);
    }
  }
}

function describeTask(machineName: string, name: string, state: Record<string, unknown>): TaskStateInfo {
  if (typeof state.Resource !== 'string') {
    throw new Error(`State machine ${machineName}: Task state '${name}' has no string Resource`);
  }
  const info: TaskStateInfo = { name, resource: state.Resource, target: taskTargetOf(state.Resource) };
  if (typeof state.HeartbeatSeconds === 'number') info.heartbeatSeconds = state.HeartbeatSeconds;
  if (typeof state.TimeoutSeconds === 'number') info.timeoutSeconds = state.TimeoutSeconds;
  return info;
}

function clampTimeout(node: Record<string, unknown>): void {
  if (typeof node.TimeoutSeconds === 'number' && node.TimeoutSeconds > MAX_TIMER_SECONDS) {
    node.TimeoutSeconds = MAX_TIMER_SECONDS;
  }
}
