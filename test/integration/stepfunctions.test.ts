import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  InvalidArn,
  InvalidToken,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  StopExecutionCommand,
  TaskDoesNotExist,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalStateMachine,
  type StepFunctionsServer,
  startStepFunctionsServer,
} from '../../local/stepfunctions/server.ts';

const ACCOUNT = '123456789012';
const machineArn = (name: string) => `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:${name}`;

const retry = { ErrorEquals: ['Transient'], IntervalSeconds: 1, BackoffRate: 1, MaxAttempts: 3 };

const pipeline: LocalStateMachine = {
  name: 'pipeline',
  definition: {
    StartAt: 'Route',
    States: {
      Route: {
        Type: 'Choice',
        Choices: [
          { Variable: '$.mode', StringEquals: 'broken', Next: 'Broken' },
          { Variable: '$.mode', StringEquals: 'approval', Next: 'Approval' },
          { Variable: '$.mode', StringEquals: 'nested', Next: 'Nested' },
        ],
        // A Choice on a missing field is a States.Runtime failure in AWS too, so every input has a mode.
        Default: 'Flaky',
      },
      Flaky: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: {
          FunctionName: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:flaky:live`,
          'Payload.$': '$',
        },
        ResultSelector: { 'attempts.$': '$.Payload.attempts', 'statusCode.$': '$.StatusCode' },
        ResultPath: '$.result',
        Retry: [retry],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Recovered' }],
        End: true,
      },
      Recovered: { Type: 'Pass', Parameters: { recovered: true, 'error.$': '$.error' }, End: true },
      Broken: {
        Type: 'Task',
        Resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:broken`,
        Retry: [retry],
        Catch: [{ ErrorEquals: ['Transient'], Next: 'Recovered' }],
        End: true,
      },
      Approval: {
        Type: 'Parallel',
        Branches: [
          {
            StartAt: 'AskApproval',
            States: {
              AskApproval: {
                Type: 'Task',
                Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
                Parameters: {
                  FunctionName: 'request-approval',
                  Payload: { 'key.$': '$.key', 'token.$': '$$.Task.Token' },
                },
                End: true,
              },
            },
          },
        ],
        OutputPath: '$[0]',
        End: true,
      },
      Nested: {
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: {
          StartAt: 'Double',
          States: {
            Double: {
              Type: 'Task',
              Resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:double`,
              End: true,
            },
          },
        },
        End: true,
      },
    },
  },
};

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** Real functions: the state machine only ever reaches them through `invokeFunction`. */
class Functions {
  readonly calls = new Map<string, number>();
  readonly tokens = new Map<string, string>();

  invoke = async (functionName: string, payload: unknown): Promise<unknown> => {
    const input = payload as { key: string; failures?: number; token?: string; n?: number };
    const count = (this.calls.get(`${functionName}:${input.key}`) ?? 0) + 1;
    this.calls.set(`${functionName}:${input.key}`, count);
    switch (functionName) {
      case 'flaky':
        if (count <= (input.failures ?? 0)) throw namedError('Transient', `attempt ${count} failed`);
        return { attempts: count };
      case 'broken':
        throw namedError('Fatal', 'broken for good');
      case 'request-approval':
        this.tokens.set(input.key, input.token ?? '');
        return { requested: true };
      case 'double':
        return (input.n ?? 0) * 2;
      case 'setup':
        return { ready: true };
      default:
        throw namedError('ResourceNotFoundException', `no function ${functionName}`);
    }
  };
}

const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

async function waitForEnd(sfn: SFNClient, executionArn: string): Promise<DescribeExecutionCommandOutput> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (out.status !== 'RUNNING') return out;
    if (Date.now() > deadline) throw new Error(`${executionArn} still RUNNING after 20 s`);
    await sleep(50);
  }
}

async function waitForToken(functions: Functions, key: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const token = functions.tokens.get(key);
    if (token) return token;
    if (Date.now() > deadline) throw new Error(`no task token for ${key} after 10 s`);
    await sleep(20);
  }
}

async function start(sfn: SFNClient, input: object, name?: string): Promise<string> {
  const out = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: machineArn('pipeline'),
      name,
      input: JSON.stringify(input),
    }),
  );
  return out.executionArn!;
}

describe('local Step Functions server', () => {
  const functions = new Functions();
  let stateDir: string;
  let server: StepFunctionsServer;
  let sfn: SFNClient;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'troveless-sfn-'));
    server = await startStepFunctionsServer({
      port: 0,
      stateMachines: [pipeline],
      invokeFunction: functions.invoke,
      stateDir,
    });
    sfn = new SFNClient({ endpoint: server.endpoint, region: 'us-east-1', credentials });
  });

  afterAll(async () => {
    sfn?.destroy();
    await server?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('lists its state machines', async () => {
    const out = await sfn.send(new ListStateMachinesCommand({}));
    expect(out.stateMachines?.map((m) => m.stateMachineArn)).toEqual([machineArn('pipeline')]);
  });

  it('succeeds after retries, calling the function once per attempt', async () => {
    const arn = await start(sfn, { key: 'a', mode: 'flaky', failures: 2 });
    const out = await waitForEnd(sfn, arn);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!)).toEqual({
      key: 'a',
      mode: 'flaky',
      failures: 2,
      result: { attempts: 3, statusCode: 200 },
    });
    expect(functions.calls.get('flaky:a')).toBe(3);
    expect(out.stopDate!.getTime()).toBeGreaterThanOrEqual(out.startDate!.getTime());

    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn }));
    const types = history.events?.map((e) => e.type);
    expect(types?.[0]).toBe('ExecutionStarted');
    expect(types?.filter((t) => t === 'TaskFailed')).toHaveLength(2);
    expect(types?.at(-1)).toBe('ExecutionSucceeded');
  });

  it('routes a failure that outlives its retries to the Catch path', async () => {
    const arn = await start(sfn, { key: 'b', mode: 'flaky', failures: 10 });
    const out = await waitForEnd(sfn, arn);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!)).toEqual({
      recovered: true,
      error: { Error: 'Transient', Cause: 'attempt 4 failed' },
    });
    expect(functions.calls.get('flaky:b')).toBe(4);
  });

  it('fails the execution on an error no Retry or Catch matches', async () => {
    const arn = await start(sfn, { key: 'c', mode: 'broken' });
    const out = await waitForEnd(sfn, arn);
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('Fatal');
    expect(out.cause).toBe('broken for good');
    expect(functions.calls.get('broken:c')).toBe(1);

    const failed = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: machineArn('pipeline'), statusFilter: 'FAILED' }),
    );
    expect(failed.executions?.map((e) => e.executionArn)).toEqual([arn]);
  });

  it('runs Tasks inside a Map', async () => {
    const items = [1, 2, 3].map((n) => ({ key: `m${n}`, n }));
    const out = await waitForEnd(sfn, await start(sfn, { mode: 'nested', items }));
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!)).toEqual([2, 4, 6]);
  });

  it('reports unknown and malformed ARNs with the AWS error codes', async () => {
    const unknown = `arn:aws:states:us-east-1:${ACCOUNT}:execution:pipeline:no-such-execution`;
    await expect(sfn.send(new DescribeExecutionCommand({ executionArn: unknown }))).rejects.toBeInstanceOf(
      ExecutionDoesNotExist,
    );
    await expect(sfn.send(new DescribeExecutionCommand({ executionArn: 'nope' }))).rejects.toBeInstanceOf(
      InvalidArn,
    );
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: machineArn('missing'), input: '{}' })),
    ).rejects.toBeInstanceOf(StateMachineDoesNotExist);
  });

  it('waits for SendTaskSuccess on a waitForTaskToken task, inside a Parallel branch', async () => {
    const input = { key: 'e1', mode: 'approval' };
    const arn = await start(sfn, input, 'approval-e1');
    const token = await waitForToken(functions, 'e1');
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn: arn }))).status).toBe('RUNNING');

    // Same name and input while open is the same call; a different input is a clash.
    expect(await start(sfn, input, 'approval-e1')).toBe(arn);
    await expect(start(sfn, { ...input, other: 1 }, 'approval-e1')).rejects.toBeInstanceOf(
      ExecutionAlreadyExists,
    );

    await sfn.send(
      new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ approved: true }) }),
    );
    const out = await waitForEnd(sfn, arn);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!)).toEqual({ approved: true });
    // As in AWS, a closed execution's name cannot be reused, whatever the input.
    await expect(start(sfn, input, 'approval-e1')).rejects.toBeInstanceOf(ExecutionAlreadyExists);

    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })),
    ).rejects.toBeInstanceOf(TaskDoesNotExist);
    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: 'not-a-token', output: '{}' })),
    ).rejects.toBeInstanceOf(InvalidToken);
  });

  it('fails a waitForTaskToken task on SendTaskFailure', async () => {
    const arn = await start(sfn, { key: 'e2', mode: 'approval' });
    const token = await waitForToken(functions, 'e2');
    await sfn.send(new SendTaskFailureCommand({ taskToken: token, error: 'Rejected', cause: 'not today' }));
    const out = await waitForEnd(sfn, arn);
    expect(out.status).toBe('FAILED');
    expect(out.error).toBe('Rejected');
    expect(out.cause).toBe('not today');
  });

  it('aborts on StopExecution', async () => {
    const arn = await start(sfn, { key: 'e3', mode: 'approval' });
    const token = await waitForToken(functions, 'e3');
    await sfn.send(new StopExecutionCommand({ executionArn: arn, error: 'Cancelled', cause: 'by test' }));
    const out = await waitForEnd(sfn, arn);
    expect(out).toMatchObject({ status: 'ABORTED', error: 'Cancelled', cause: 'by test' });
    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })),
    ).rejects.toBeInstanceOf(TaskDoesNotExist);
  });
});

// A workflow shaped like the project's: an idempotent step, then a callback step with a Catch.
const workflow: LocalStateMachine = {
  name: 'workflow',
  definition: {
    StartAt: 'Setup',
    States: {
      Setup: {
        Type: 'Task',
        Resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:setup`,
        ResultPath: '$.setup',
        Next: 'Approve',
      },
      Approve: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
        Parameters: {
          FunctionName: 'request-approval',
          Payload: { 'key.$': '$.key', 'token.$': '$$.Task.Token' },
        },
        TimeoutSeconds: 600,
        ResultPath: '$.approval',
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 1, MaxAttempts: 3 }],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Recovered' }],
        End: true,
      },
      Recovered: { Type: 'Pass', End: true },
    },
  },
};

describe('local Step Functions server restart', () => {
  let stateDir: string;
  const servers: StepFunctionsServer[] = [];
  const clients: SFNClient[] = [];

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'troveless-sfn-restart-'));
  });

  afterAll(async () => {
    for (const client of clients) client.destroy();
    for (const server of servers) await server.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  async function boot(functions: Functions, stateMachines = [pipeline, workflow]): Promise<SFNClient> {
    const server = await startStepFunctionsServer({
      port: 0,
      stateMachines,
      invokeFunction: functions.invoke,
      stateDir,
    });
    servers.push(server);
    const client = new SFNClient({ endpoint: server.endpoint, region: 'us-east-1', credentials });
    clients.push(client);
    return client;
  }

  async function closeLast(): Promise<void> {
    await servers.at(-1)?.close();
  }

  async function startWorkflow(sfn: SFNClient, key: string): Promise<string> {
    const out = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: machineArn('workflow'), input: JSON.stringify({ key }) }),
    );
    return out.executionArn!;
  }

  it('keeps finished executions and resumes one interrupted inside a Parallel state', async () => {
    const functions = new Functions();
    const first = await boot(functions);
    const done = await start(first, { key: 'r1', mode: 'flaky' });
    expect((await waitForEnd(first, done)).status).toBe('SUCCEEDED');
    const waiting = await start(first, { key: 'r2', mode: 'approval' });
    const token = await waitForToken(functions, 'r2');

    await closeLast();
    const again = new Functions();
    const second = await boot(again);
    const kept = await second.send(new DescribeExecutionCommand({ executionArn: done }));
    expect(kept.status).toBe('SUCCEEDED');
    expect(JSON.parse(kept.output!)).toEqual({
      key: 'r1',
      mode: 'flaky',
      result: { attempts: 1, statusCode: 200 },
    });
    // The Parallel state runs again: its callback asks again, with a token of its own.
    const newToken = await waitForToken(again, 'r2');
    expect(newToken).not.toBe(token);
    await expect(
      second.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })),
    ).rejects.toBeInstanceOf(TaskDoesNotExist);
    await second.send(new SendTaskSuccessCommand({ taskToken: newToken, output: '{"approved":true}' }));
    const out = await waitForEnd(second, waiting);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!)).toEqual({ approved: true });
    expect(out.redriveCount).toBe(1);
  });

  it('resumes at the state in flight with the input it had, without running earlier states again', async () => {
    const functions = new Functions();
    const first = await boot(functions);
    const arn = await startWorkflow(first, 'w1');
    await waitForToken(functions, 'w1');
    expect(functions.calls.get('setup:w1')).toBe(1);

    await closeLast();
    const again = new Functions();
    const second = await boot(again);
    expect((await second.send(new DescribeExecutionCommand({ executionArn: arn }))).status).toBe('RUNNING');
    const token = await waitForToken(again, 'w1');
    await second.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"approved":true}' }));
    const out = await waitForEnd(second, arn);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!)).toEqual({
      key: 'w1',
      setup: { ready: true },
      approval: { approved: true },
    });
    expect(again.calls.get('setup:w1')).toBeUndefined();
    const history = await second.send(new GetExecutionHistoryCommand({ executionArn: arn }));
    const redriven = history.events?.find((e) => e.type === 'ExecutionRedriven');
    expect(redriven?.executionRedrivenEventDetails?.redriveCount).toBe(1);
  });

  it('runs the Catch branch of a state that restarts keep interrupting, without retrying it', async () => {
    let functions = new Functions();
    let sfn = await boot(functions);
    const arn = await startWorkflow(sfn, 'w2');
    await waitForToken(functions, 'w2');
    // Three resumes of the same state are run; the fourth fails it into its Catch.
    for (let resumes = 1; resumes <= 3; resumes++) {
      await closeLast();
      functions = new Functions();
      sfn = await boot(functions);
      await waitForToken(functions, 'w2');
    }
    await closeLast();
    const last = new Functions();
    sfn = await boot(last);
    const out = await waitForEnd(sfn, arn);
    expect(out.status).toBe('SUCCEEDED');
    expect(JSON.parse(out.output!).error).toEqual({
      Error: 'States.TaskFailed',
      Cause: 'The local Step Functions runner restarted 3 times during state Approve; it is not run again',
    });
    expect(last.calls.size).toBe(0);
  });

  it('fails an interrupted execution whose state machine is gone', async () => {
    const functions = new Functions();
    const first = await boot(functions);
    const arn = await startWorkflow(first, 'w3');
    await waitForToken(functions, 'w3');
    await closeLast();
    const second = await boot(new Functions(), [pipeline]);
    expect(await second.send(new DescribeExecutionCommand({ executionArn: arn }))).toMatchObject({
      status: 'FAILED',
      error: 'States.Runtime',
      cause: 'State machine workflow no longer exists',
    });
  });
});
