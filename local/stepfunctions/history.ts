import type { StateMachine } from 'aws-local-stepfunctions';
import type { TaskStateInfo } from './definition.ts';

type RunHandle = ReturnType<StateMachine['run']>;
export type LibraryEvent = RunHandle['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** A history event as stored: the id is its position, given out when the history is read. */
export interface StoredEvent {
  timestamp: number;
  type: string;
  detailsKey?: string;
  details?: Record<string, unknown>;
}

export function storedEvent(
  type: string,
  detailsKey?: string,
  details?: Record<string, unknown>,
): StoredEvent {
  return { timestamp: Date.now(), type, ...(detailsKey && details ? { detailsKey, details } : {}) };
}

/**
 * The AWS history event for a library event, or undefined where AWS has none: retries and catches
 * show in AWS only as the next attempt or state; ExecutionStarted and ExecutionAborted are recorded
 * by the server itself (it knows the role and the StopExecution error and cause).
 */
export function toStoredEvent(
  event: LibraryEvent,
  tasks: Map<string, TaskStateInfo>,
): StoredEvent | undefined {
  const at = (e: StoredEvent): StoredEvent => ({ ...e, timestamp: event.timestamp });
  switch (event.type) {
    case 'ExecutionSucceeded':
      return at(
        storedEvent('ExecutionSucceeded', 'executionSucceededEventDetails', withOutput(event.output)),
      );
    case 'ExecutionFailed':
      return at(
        storedEvent('ExecutionFailed', 'executionFailedEventDetails', {
          error: event.Error,
          cause: causeText(event.Cause),
        }),
      );
    case 'ExecutionTimeout':
      return at(
        storedEvent('ExecutionTimedOut', 'executionTimedOutEventDetails', { error: 'States.Timeout' }),
      );
    case 'StateEntered':
      return at(
        storedEvent(`${event.state.type}StateEntered`, 'stateEnteredEventDetails', {
          name: event.state.name,
          ...withInput(event.state.input),
        }),
      );
    case 'StateExited':
      return at(
        storedEvent(`${event.state.type}StateExited`, 'stateExitedEventDetails', {
          name: event.state.name,
          ...withOutput(event.state.output ?? null),
        }),
      );
    case 'StateFailed': {
      const task = tasks.get(event.state.name);
      if (event.state.type === 'Task' && task) {
        return at(
          storedEvent('TaskFailed', 'taskFailedEventDetails', {
            resourceType: resourceTypeOf(task.resource),
            resource: task.resource,
            error: event.Error,
            cause: causeText(event.Cause),
          }),
        );
      }
      if (event.state.type === 'Map' || event.state.type === 'Parallel')
        return at(storedEvent(`${event.state.type}StateFailed`));
      return undefined;
    }
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed': {
      const key = `${event.type.charAt(0).toLowerCase()}${event.type.slice(1)}EventDetails`;
      return at(storedEvent(event.type, key, { name: event.parentState.name, index: event.index }));
    }
    default:
      return undefined;
  }
}

/** The event as GetExecutionHistory returns it. */
export function toHistoryEvent(
  event: StoredEvent,
  index: number,
  includeData: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    timestamp: event.timestamp / 1000,
    type: event.type,
    id: index + 1,
    previousEventId: index,
  };
  if (event.detailsKey && event.details) {
    const details = { ...event.details };
    if (!includeData) {
      for (const key of ['input', 'inputDetails', 'output', 'outputDetails']) delete details[key];
    }
    out[event.detailsKey] = details;
  }
  return out;
}

function withInput(value: unknown): Record<string, unknown> {
  return { input: JSON.stringify(value), inputDetails: { truncated: false } };
}

function withOutput(value: unknown): Record<string, unknown> {
  return { output: JSON.stringify(value), outputDetails: { truncated: false } };
}

export function causeText(cause: unknown): string {
  return typeof cause === 'string' ? cause : (JSON.stringify(cause) ?? '');
}

function resourceTypeOf(resource: string): string {
  return resource.split(':')[2] === 'lambda' ? 'lambda' : (resource.split(':')[5] ?? 'unknown');
}
