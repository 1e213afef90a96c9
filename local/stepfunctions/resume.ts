import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { ExecutionRecord } from './executions.ts';
import { isObject } from './protocol.ts';

// What a restarted runner does with an execution that was running when it stopped. The history
// on disk ends with the last top-level state entered (it is saved at every state entry), so the
// execution goes on from there: that state runs again with the input it had, as a redrive does
// in AWS. Every Task in this project's workflows is idempotent, which is what makes this safe.
// A Task whose timeout ran out while the runner was stopped, or that has been interrupted too
// often, is not run again: it fails, so that its Retry/Catch decide what follows.

/** Resumes of the same state after which it is failed instead (a crash loop). */
export const MAX_RESUMES_PER_STATE = 3;

export interface StateFailure {
  name: string;
  cause: string;
}

export type ResumePlan =
  | {
      kind: 'run';
      state: string;
      /** The prepared definition starting at `state`, timeouts shortened by the time already spent. */
      definition: StateMachineDefinition;
      input: unknown;
      /** How many times in a row this state has now been resumed. */
      count: number;
      /** When the state was first entered, before any resume. */
      enteredAt: number;
      /** Set when the state must fail rather than run (only for Task states). */
      failure?: StateFailure;
      /** Milliseconds left of a Wait state. */
      waitOverrides?: Record<string, number>;
    }
  | { kind: 'fail'; cause: string };

export function planResume(
  prepared: StateMachineDefinition,
  record: ExecutionRecord,
  now: number,
): ResumePlan {
  const definition = structuredClone(prepared);
  const states = definition.States as unknown as Record<string, Record<string, unknown>>;
  const entered = lastEnteredState(record, states);
  let state = definition.StartAt;
  let input: unknown;
  let enteredAt = record.startDate;
  if (entered) {
    state = entered.name;
    enteredAt = entered.timestamp;
    try {
      input = JSON.parse(entered.input);
    } catch {
      return { kind: 'fail', cause: `The recorded input of state ${state} is unreadable` };
    }
  } else {
    input = JSON.parse(record.input);
  }
  const node = states[state];
  if (!node) return { kind: 'fail', cause: `State ${state} is no longer in the state machine` };

  const again = record.resume?.state === state ? record.resume : undefined;
  const count = again ? again.count + 1 : 1;
  // A state resumed before keeps the time it was first entered: its timeout does not restart.
  if (again) enteredAt = again.enteredAt;
  const elapsedSeconds = (now - enteredAt) / 1000;
  definition.StartAt = state;
  if (typeof definition.TimeoutSeconds === 'number') {
    definition.TimeoutSeconds = Math.max(0, definition.TimeoutSeconds - (now - record.startDate) / 1000);
  }

  if (node.Type === 'Task') {
    const timeout = typeof node.TimeoutSeconds === 'number' ? node.TimeoutSeconds : undefined;
    let failure: StateFailure | undefined;
    if (timeout !== undefined && elapsedSeconds >= timeout) {
      failure = {
        name: 'States.Timeout',
        cause: `State ${state} timed out while the local Step Functions runner was stopped`,
      };
    } else if (count > MAX_RESUMES_PER_STATE) {
      failure = {
        name: 'States.TaskFailed',
        cause: `The local Step Functions runner restarted ${count - 1} times during state ${state}; it is not run again`,
      };
    } else if (timeout !== undefined) {
      node.TimeoutSeconds = Math.max(1, Math.ceil(timeout - elapsedSeconds));
    }
    return { kind: 'run', state, definition, input, count, enteredAt, ...(failure ? { failure } : {}) };
  }
  if (count > MAX_RESUMES_PER_STATE) {
    return {
      kind: 'fail',
      cause: `The local Step Functions runner restarted ${count - 1} times during state ${state}`,
    };
  }
  const waitOverrides =
    node.Type === 'Wait' && typeof node.Seconds === 'number'
      ? { [state]: Math.max(0, node.Seconds * 1000 - elapsedSeconds * 1000) }
      : undefined;
  return {
    kind: 'run',
    state,
    definition,
    input,
    count,
    enteredAt,
    ...(waitOverrides ? { waitOverrides } : {}),
  };
}

/** The last state entered at the top level (states inside Map and Parallel re-run with their parent). */
function lastEnteredState(
  record: ExecutionRecord,
  states: Record<string, unknown>,
): { name: string; input: string; timestamp: number } | undefined {
  for (let i = record.events.length - 1; i >= 0; i--) {
    const event = record.events[i];
    if (!event?.type.endsWith('StateEntered') || !isObject(event.details)) continue;
    const { name, input } = event.details;
    if (typeof name === 'string' && name in states && typeof input === 'string') {
      return { name, input, timestamp: event.timestamp };
    }
  }
  return undefined;
}
