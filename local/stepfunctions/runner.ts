import { randomUUID } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import { prepareDefinition, type TaskStateInfo } from './definition.ts';
import { type ExecutionRecord, type ExecutionStatus, type ExecutionStore, finish } from './executions.ts';
import { type LibraryEvent, storedEvent, toStoredEvent } from './history.ts';
import { planResume, type ResumePlan, type StateFailure } from './resume.ts';
import { buildTaskHandlers } from './tasks.ts';
import type { TaskTokens } from './tokens.ts';

type JSONValue = Parameters<StateMachine['run']>[0];

export interface Machine {
  name: string;
  arn: string;
  roleArn: string;
  /** The definition as configured, for DescribeStateMachine. */
  definition: string;
  creationDate: number;
  stateMachine: StateMachine;
  /** The runnable definition, from which a resumed execution's machine is made. */
  prepared: StateMachineDefinition;
  tasks: Map<string, TaskStateInfo>;
}

export function createMachine(
  name: string,
  arn: string,
  roleArn: string,
  definition: Record<string, unknown>,
): Machine {
  const prepared = prepareDefinition(name, definition);
  let stateMachine: StateMachine;
  try {
    stateMachine = new StateMachine(prepared.definition);
  } catch (error) {
    throw new Error(`State machine ${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    name,
    arn,
    roleArn,
    definition: JSON.stringify(definition),
    creationDate: Date.now(),
    stateMachine,
    prepared: prepared.definition,
    tasks: prepared.tasks,
  };
}

export interface RunnerDeps {
  store: ExecutionStore;
  tokens: TaskTokens;
  invokeFunction: (functionName: string, payload: unknown) => Promise<unknown>;
  region: string;
  log: (line: string) => void;
}

interface Control {
  /** Set once the outcome is decided elsewhere (stop, shutdown): the library's own is then ignored. */
  stopped: boolean;
  abort: () => void;
  eventsDone: Promise<void>;
}

interface Outcome {
  status: Exclude<ExecutionStatus, 'RUNNING'>;
  output?: string;
  error?: string;
  cause?: string;
}

export class ExecutionRunner {
  private readonly running = new Map<string, Control>();
  private sqsClient: SQSClient | undefined;
  private closed = false;

  constructor(private readonly deps: RunnerDeps) {}

  start(machine: Machine, record: ExecutionRecord): void {
    this.run(machine, record, machine.stateMachine, JSON.parse(record.input));
  }

  /**
   * Goes on with an execution that was running when an earlier runner stopped (see resume.ts):
   * from its last state entered, or through that state's Catch when it cannot run again.
   */
  async resume(machine: Machine, record: ExecutionRecord): Promise<void> {
    const plan: ResumePlan = planResume(machine.prepared, record, Date.now());
    if (plan.kind === 'fail') {
      await this.deps.store.failInterrupted(record, plan.cause);
      return;
    }
    record.redriveCount = (record.redriveCount ?? 0) + 1;
    record.redriveDate = Date.now();
    record.resume = { state: plan.state, count: plan.count, enteredAt: plan.enteredAt };
    record.events.push(
      storedEvent('ExecutionRedriven', 'executionRedrivenEventDetails', {
        redriveCount: record.redriveCount,
      }),
    );
    this.deps.log(
      `${record.executionArn} resumed at ${plan.state}${plan.failure ? ` (failing it: ${plan.failure.cause})` : ''}`,
    );
    // The library validated the full definition already; this copy only starts elsewhere.
    const stateMachine = new StateMachine(plan.definition, { validationOptions: { noValidate: true } });
    await this.deps.store.save(record);
    this.run(machine, record, stateMachine, plan.input, plan);
  }

  private run(
    machine: Machine,
    record: ExecutionRecord,
    stateMachine: StateMachine,
    input: unknown,
    plan?: Extract<ResumePlan, { kind: 'run' }>,
  ): void {
    // A StartExecution that was still persisting when the server closed: left as after a crash.
    if (this.closed) return;
    const control: Control = { stopped: false, abort: () => undefined, eventsDone: Promise.resolve() };
    const tokenPlaceholder = `local-sfn-task-token-placeholder-${randomUUID()}`;
    const handlers = buildTaskHandlers(machine.tasks, {
      executionArn: record.executionArn,
      tokenPlaceholder,
      tokens: this.deps.tokens,
      invokeFunction: this.deps.invokeFunction,
      sqs: () => this.sqs(),
      isStopped: () => control.stopped,
      log: this.deps.log,
    });
    const failure = plan?.failure;
    if (plan && failure) {
      handlers[plan.state] = () => {
        throw new ResumeFailure(failure);
      };
    }
    const run = stateMachine.run(input as JSONValue, {
      overrides: {
        taskResourceLocalHandlers: handlers,
        ...(plan?.waitOverrides ? { waitTimeOverrides: plan.waitOverrides } : {}),
      },
      context: {
        Execution: {
          Id: record.executionArn,
          Name: record.name,
          RoleArn: machine.roleArn,
          RedriveCount: record.redriveCount ?? 0,
        },
        StateMachine: { Id: machine.arn, Name: machine.name },
        Task: { Token: tokenPlaceholder },
      },
    });
    control.abort = run.abort;
    // Saved at every state entry, so that a restart finds where the execution was.
    const checkpoint = () => {
      if (control.stopped || this.closed) return;
      this.deps.store
        .save(record)
        .catch((error: unknown) =>
          this.deps.log(`could not persist ${record.executionArn}: ${String(error)}`),
        );
    };
    control.eventsDone = collectEvents(run.eventLogs, record, machine.tasks, checkpoint).catch(
      (error: unknown) => this.deps.log(`history of ${record.executionArn} is incomplete: ${String(error)}`),
    );
    this.running.set(record.executionArn, control);
    run.result
      .then(
        (output) => this.complete(record, control, { status: 'SUCCEEDED', output: JSON.stringify(output) }),
        (error: unknown) => this.complete(record, control, outcomeOf(error)),
      )
      .catch((error: unknown) =>
        this.deps.log(`could not complete ${record.executionArn}: ${String(error)}`),
      );
  }

  async stop(record: ExecutionRecord, error?: string, cause?: string): Promise<void> {
    const control = this.running.get(record.executionArn);
    if (control) this.release(record.executionArn, control, 'The execution was stopped');
    // Decided before any await, so a concurrent StopExecution finds it closed.
    finish(record, 'ABORTED', { error, cause });
    // Aborting closes the library's event log; draining it first keeps ExecutionAborted last.
    await control?.eventsDone;
    record.events.push(storedEvent('ExecutionAborted', 'executionAbortedEventDetails', { error, cause }));
    this.deps.log(`${record.executionArn} ABORTED`);
    await this.deps.store.save(record);
  }

  /**
   * Ends every run in this process without recording an outcome: on disk they stay RUNNING, exactly
   * as after a crash, so the next start-up resumes them through the one recovery path.
   */
  shutdown(): void {
    this.closed = true;
    for (const [executionArn, control] of this.running) {
      this.release(executionArn, control, 'The local Step Functions runner stopped');
    }
    this.sqsClient?.destroy();
  }

  private release(executionArn: string, control: Control, reason: string): void {
    control.stopped = true;
    this.running.delete(executionArn);
    control.abort();
    // Also frees the library's Task timers, which wait for the handler whatever the abort.
    this.deps.tokens.cancelExecution(executionArn, reason);
  }

  private async complete(record: ExecutionRecord, control: Control, outcome: Outcome): Promise<void> {
    await control.eventsDone;
    if (control.stopped) return;
    this.release(record.executionArn, control, 'The execution has ended');
    finish(record, outcome.status, outcome);
    const why = outcome.error
      ? ` (${outcome.error}${outcome.cause ? `: ${outcome.cause.slice(0, 300)}` : ''})`
      : '';
    this.deps.log(`${record.executionArn} ${outcome.status}${why}`);
    try {
      await this.deps.store.save(record);
    } catch (error) {
      // The file still says RUNNING: the next start-up resumes it.
      this.deps.log(`could not persist ${record.executionArn}: ${String(error)}`);
    }
  }

  private sqs(): SQSClient {
    // Default configuration so AWS_ENDPOINT_URL_SQS applies; the region only fills a gap.
    this.sqsClient ??= new SQSClient(process.env.AWS_REGION ? {} : { region: this.deps.region });
    return this.sqsClient;
  }
}

async function collectEvents(
  events: AsyncGenerator<LibraryEvent>,
  record: ExecutionRecord,
  tasks: Map<string, TaskStateInfo>,
  onStateEntered: () => void,
): Promise<void> {
  for await (const event of events) {
    const stored = toStoredEvent(event, tasks);
    if (!stored) continue;
    record.events.push(stored);
    if (event.type === 'StateEntered') onStateEntered();
  }
}

/** A state failed on resume: Catch may take it, Retry may not (it would fail the same way). */
class ResumeFailure extends Error {
  constructor(failure: StateFailure) {
    super(failure.cause);
    this.name = failure.name;
  }
  get isRetryable(): boolean {
    return false;
  }
  get isCatchable(): boolean {
    return true;
  }
}

function outcomeOf(error: unknown): Outcome {
  if (error instanceof ExecutionTimeoutError) return { status: 'TIMED_OUT', error: 'States.Timeout' };
  if (error instanceof ExecutionAbortedError) return { status: 'ABORTED' };
  const cause = error instanceof ExecutionError ? error.cause : error;
  if (cause instanceof Error) return { status: 'FAILED', error: cause.name, cause: cause.message };
  return { status: 'FAILED', error: 'States.Runtime', cause: String(cause) };
}
