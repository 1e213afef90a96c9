import { randomUUID } from 'node:crypto';
import type { ExecutionRecord, ExecutionStatus, ExecutionStore } from './executions.ts';
import { storedEvent, toHistoryEvent } from './history.ts';
import {
  optionalString,
  type Params,
  paginate,
  requiredString,
  ServiceError,
  toEpochSeconds,
} from './protocol.ts';
import type { ExecutionRunner, Machine } from './runner.ts';
import { type TaskTokens, taskFailure } from './tokens.ts';

export interface OperationDeps {
  /** By state machine ARN. */
  machines: Map<string, Machine>;
  store: ExecutionStore;
  runner: ExecutionRunner;
  tokens: TaskTokens;
}

export type Operation = (params: Params) => Promise<unknown> | unknown;

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[^:]+:\d{12}:stateMachine:[^:]+(:[^:]+)?$/;
const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[^:]+:\d{12}:execution:[^:]+:[^:]+$/;
// AWS's rule for execution names: 1-80 characters, none of whitespace, brackets, wildcards,
// most punctuation or control characters.
const INVALID_NAME_CHARS = /[\s<>{}[\]?*"#%\\^|~`$&,;:/]|\p{Cc}/u;
const STATUSES: ExecutionStatus[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT'];

export function createOperations(deps: OperationDeps): Map<string, Operation> {
  const { machines, store, runner, tokens } = deps;

  const machineFor = (params: Params): Machine => {
    const arn = requiredString(params, 'stateMachineArn');
    if (!STATE_MACHINE_ARN.test(arn)) throw new ServiceError('InvalidArn', `Invalid Arn: '${arn}'`);
    const machine = machines.get(arn);
    if (!machine)
      throw new ServiceError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return machine;
  };

  const executionFor = (params: Params): ExecutionRecord => {
    const arn = requiredString(params, 'executionArn');
    if (!EXECUTION_ARN.test(arn)) throw new ServiceError('InvalidArn', `Invalid Arn: '${arn}'`);
    const record = store.get(arn);
    if (!record) throw new ServiceError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return record;
  };

  const summary = (r: ExecutionRecord) => ({
    executionArn: r.executionArn,
    stateMachineArn: r.stateMachineArn,
    name: r.name,
    status: r.status,
    startDate: toEpochSeconds(r.startDate),
    ...(r.stopDate === undefined ? {} : { stopDate: toEpochSeconds(r.stopDate) }),
  });

  const parseJson = (text: string, code: string, what: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      throw new ServiceError(code, `Invalid ${what}: not a JSON text`);
    }
  };

  return new Map<string, Operation>([
    [
      'ListStateMachines',
      (params) => {
        const all = [...machines.values()].sort((a, b) => a.name.localeCompare(b.name));
        const { page, nextToken } = paginate(all, params);
        return {
          stateMachines: page.map((m) => ({
            stateMachineArn: m.arn,
            name: m.name,
            type: 'STANDARD',
            creationDate: toEpochSeconds(m.creationDate),
          })),
          nextToken,
        };
      },
    ],
    [
      'DescribeStateMachine',
      (params) => {
        const m = machineFor(params);
        return {
          stateMachineArn: m.arn,
          name: m.name,
          status: 'ACTIVE',
          definition: m.definition,
          roleArn: m.roleArn,
          type: 'STANDARD',
          creationDate: toEpochSeconds(m.creationDate),
          loggingConfiguration: { level: 'OFF', includeExecutionData: false },
        };
      },
    ],
    [
      'DescribeStateMachineForExecution',
      (params) => {
        const record = executionFor(params);
        const m = machines.get(record.stateMachineArn);
        if (!m) {
          throw new ServiceError(
            'StateMachineDoesNotExist',
            `State Machine Does Not Exist: '${record.stateMachineArn}'`,
          );
        }
        return {
          stateMachineArn: m.arn,
          name: m.name,
          definition: m.definition,
          roleArn: m.roleArn,
          updateDate: toEpochSeconds(m.creationDate),
        };
      },
    ],
    [
      'StartExecution',
      async (params) => {
        const machine = machineFor(params);
        const name = optionalString(params, 'name') ?? randomUUID();
        if (name.length === 0 || name.length > 80 || INVALID_NAME_CHARS.test(name)) {
          throw new ServiceError('InvalidName', `Invalid Name: '${name}'`);
        }
        const input = optionalString(params, 'input') ?? '{}';
        parseJson(input, 'InvalidExecutionInput', 'execution input');
        const executionArn = `${machine.arn.replace(':stateMachine:', ':execution:')}:${name}`;
        const existing = store.get(executionArn);
        if (existing) {
          // AWS standard workflows: the same name and input while the execution is open is the same
          // call again; anything else, including any reuse of a closed execution's name, is a clash.
          if (existing.status === 'RUNNING' && existing.input === input) {
            return { executionArn, startDate: toEpochSeconds(existing.startDate) };
          }
          throw new ServiceError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
        }
        const record: ExecutionRecord = {
          executionArn,
          stateMachineArn: machine.arn,
          stateMachineName: machine.name,
          name,
          status: 'RUNNING',
          startDate: Date.now(),
          input,
          events: [
            storedEvent('ExecutionStarted', 'executionStartedEventDetails', {
              input,
              inputDetails: { truncated: false },
              roleArn: machine.roleArn,
            }),
          ],
        };
        store.add(record);
        try {
          await store.save(record);
        } catch (error) {
          store.remove(executionArn);
          throw new ServiceError('InternalFailure', `Could not persist the execution: ${String(error)}`, 500);
        }
        runner.start(machine, record);
        return { executionArn, startDate: toEpochSeconds(record.startDate) };
      },
    ],
    [
      'DescribeExecution',
      (params) => {
        const r = executionFor(params);
        return {
          ...summary(r),
          input: r.input,
          inputDetails: { included: true },
          ...(r.output === undefined ? {} : { output: r.output, outputDetails: { included: true } }),
          ...(r.error === undefined ? {} : { error: r.error }),
          ...(r.cause === undefined ? {} : { cause: r.cause }),
          // Resumed after a restart of the runner: shown as AWS shows a redriven execution.
          ...(r.redriveCount === undefined
            ? {}
            : { redriveCount: r.redriveCount, redriveDate: toEpochSeconds(r.redriveDate ?? r.startDate) }),
        };
      },
    ],
    [
      'StopExecution',
      async (params) => {
        const record = executionFor(params);
        if (record.status === 'RUNNING') {
          await runner.stop(record, optionalString(params, 'error'), optionalString(params, 'cause'));
        }
        return { stopDate: toEpochSeconds(record.stopDate ?? Date.now()) };
      },
    ],
    [
      'ListExecutions',
      (params) => {
        const machine = machineFor(params);
        const statusFilter = optionalString(params, 'statusFilter');
        if (statusFilter !== undefined && !STATUSES.includes(statusFilter as ExecutionStatus)) {
          throw new ServiceError('ValidationException', `Invalid statusFilter: '${statusFilter}'`);
        }
        const matching = store
          .list(machine.arn)
          .filter((r) => statusFilter === undefined || r.status === statusFilter)
          .sort((a, b) => b.startDate - a.startDate);
        const { page, nextToken } = paginate(matching, params);
        return { executions: page.map(summary), nextToken };
      },
    ],
    [
      'GetExecutionHistory',
      (params) => {
        const record = executionFor(params);
        const includeData = params.includeExecutionData !== false;
        const events = record.events.map((e, i) => toHistoryEvent(e, i, includeData));
        if (params.reverseOrder === true) events.reverse();
        const { page, nextToken } = paginate(events, params);
        return { events: page, nextToken };
      },
    ],
    [
      'SendTaskSuccess',
      (params) => {
        const token = requiredString(params, 'taskToken');
        const output = parseJson(requiredString(params, 'output'), 'InvalidOutput', 'output');
        tokens.succeed(token, output);
        return {};
      },
    ],
    [
      'SendTaskFailure',
      (params) => {
        const token = requiredString(params, 'taskToken');
        // AWS leaves the error empty when none is given; Retry and Catch need a name to match,
        // and States.TaskFailed is what matches any task error anyway.
        const error = optionalString(params, 'error') || 'States.TaskFailed';
        tokens.fail(token, taskFailure(error, optionalString(params, 'cause') ?? ''));
        return {};
      },
    ],
    [
      'SendTaskHeartbeat',
      (params) => {
        tokens.heartbeat(requiredString(params, 'taskToken'));
        return {};
      },
    ],
  ]);
}
