import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExecutionStore } from './executions.ts';
import { createOperations, type Operation } from './operations.ts';
import { readRequest, ServiceError, sendError, sendResult } from './protocol.ts';
import { createMachine, ExecutionRunner, type Machine } from './runner.ts';
import { TaskTokens } from './tokens.ts';

export interface LocalStateMachine {
  name: string;
  definition: Record<string, unknown>;
  roleArn?: string;
}

export interface StepFunctionsServerOptions {
  port: number; // 0 = pick a free port
  host?: string; // default 127.0.0.1
  region?: string; // default us-east-1
  accountId?: string; // default 123456789012
  stateMachines: LocalStateMachine[];
  // Invokes a Lambda function for a Task state: functionName is the plain function name (parsed out
  // of an ARN like arn:aws:lambda:us-east-1:123456789012:function:NAME[:qualifier] or from
  // Parameters.FunctionName of arn:aws:states:::lambda:invoke). Returns the function's result or throws
  // an Error whose `name` is the error type (e.g. the Lambda errorType) and message the cause.
  invokeFunction: (functionName: string, payload: unknown) => Promise<unknown>;
  stateDir?: string; // if set, executions are persisted as JSON files here and survive a restart
  log?: (line: string) => void;
}

export interface StepFunctionsServer {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/**
 * A local stand-in for the Step Functions API: @aws-sdk/client-sfn pointed at `endpoint` (e.g. via
 * AWS_ENDPOINT_URL_SFN) works unchanged. State machines run on aws-local-stepfunctions, with every
 * Task routed to `invokeFunction` or SQS.
 */
export async function startStepFunctionsServer(
  opts: StepFunctionsServerOptions,
): Promise<StepFunctionsServer> {
  const host = opts.host ?? '127.0.0.1';
  const region = opts.region ?? 'us-east-1';
  const accountId = opts.accountId ?? '123456789012';
  const log = opts.log ?? (() => undefined);

  const machines = new Map<string, Machine>();
  for (const config of opts.stateMachines) {
    const arn = `arn:aws:states:${region}:${accountId}:stateMachine:${config.name}`;
    if (machines.has(arn)) throw new Error(`Duplicate state machine name: ${config.name}`);
    const roleArn = config.roleArn ?? `arn:aws:iam::${accountId}:role/${config.name}-role`;
    const machine = createMachine(config.name, arn, roleArn, config.definition);
    for (const task of machine.tasks.values()) {
      if (task.target.kind === 'unsupported') {
        log(`${config.name}: Task ${task.name} uses unsupported resource ${task.resource}`);
      }
    }
    machines.set(arn, machine);
  }

  const store = new ExecutionStore(opts.stateDir, log);
  const interrupted = await store.load();
  const tokens = new TaskTokens();
  const runner = new ExecutionRunner({ store, tokens, invokeFunction: opts.invokeFunction, region, log });
  // Executions a restart interrupted go on from where they were (resume.ts), before new ones start.
  for (const record of interrupted) {
    const machine = machines.get(record.stateMachineArn);
    if (machine) await runner.resume(machine, record);
    else await store.failInterrupted(record, `State machine ${record.stateMachineName} no longer exists`);
  }
  const operations = createOperations({ machines, store, runner, tokens });

  const server = createServer((req, res) => {
    void handle(operations, req, res, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log(`listening on ${endpoint} (${machines.size} state machines)`);

  let closing: Promise<void> | undefined;
  return {
    endpoint,
    port,
    close() {
      closing ??= (async () => {
        runner.shutdown();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // The SDK keeps connections alive; without this close() waits for them to time out.
          server.closeAllConnections();
        });
        await store.flush();
      })();
      return closing;
    },
  };
}

async function handle(
  operations: Map<string, Operation>,
  req: IncomingMessage,
  res: ServerResponse,
  log: (line: string) => void,
): Promise<void> {
  try {
    const { operation, params } = await readRequest(req);
    const run = operations.get(operation);
    if (!run)
      throw new ServiceError('UnknownOperationException', `Operation ${operation} is not supported locally`);
    sendResult(res, 200, (await run(params)) ?? {});
  } catch (error) {
    if (error instanceof ServiceError) {
      sendError(res, error);
      return;
    }
    log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    sendError(
      res,
      new ServiceError('InternalFailure', 'Internal error in the local Step Functions server', 500),
    );
  }
}
