import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { config } from './config.ts';

// Trove's taskmanager casts become state-machine executions. An execution is named after what
// it works on, so starting the same work twice (a retried request) cannot run it twice.
const sfn = new SFNClient({});

export type Workflow =
  | 'instance-create'
  | 'instance-restart'
  | 'instance-delete'
  | 'backup-create'
  | 'replica-promote'
  | 'replica-eject'
  | 'replica-detach'
  | 'replica-reseed'
  | 'instance-resize-flavor'
  | 'instance-resize-volume'
  | 'instance-upgrade'
  | 'module-reapply'
  | 'cluster-create'
  | 'cluster-delete'
  | 'cluster-grow'
  | 'cluster-shrink';

let arns: Promise<Map<string, string>> | undefined;

async function stateMachineArn(workflow: Workflow): Promise<string> {
  const name = `troveless-${config.stage}-${workflow}`;
  const lookup = async () => {
    const found = new Map<string, string>();
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(new ListStateMachinesCommand({ nextToken }));
      for (const m of page.stateMachines ?? [])
        if (m.name && m.stateMachineArn) found.set(m.name, m.stateMachineArn);
      nextToken = page.nextToken;
    } while (nextToken);
    return found;
  };
  arns ??= lookup().catch((err) => {
    arns = undefined;
    throw err;
  });
  const arn = (await arns).get(name);
  if (!arn) throw new Error(`state machine ${name} is not deployed`);
  return arn;
}

export async function startWorkflow(
  workflow: Workflow,
  executionName: string,
  input: object,
): Promise<string> {
  try {
    const out = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: await stateMachineArn(workflow),
        name: executionName,
        input: JSON.stringify(input),
      }),
    );
    return out.executionArn ?? '';
  } catch (err) {
    // The same work already started (or ran): that execution is the one that counts.
    if (err instanceof ExecutionAlreadyExists) return '';
    throw err;
  }
}

/**
 * Whether the execution that owns a record still runs. A record in a transient state whose
 * execution has ended (or never started, or was lost) will never be finished by it, so its owner
 * may clean it up.
 */
async function executionArnOf(workflow: Workflow, executionName: string): Promise<string> {
  const machine = await stateMachineArn(workflow);
  return `${machine.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

export async function workflowRunning(workflow: Workflow, executionName: string): Promise<boolean> {
  const executionArn = await executionArnOf(workflow, executionName);
  try {
    const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    return out.status === 'RUNNING' || out.status === 'PENDING_REDRIVE';
  } catch (err) {
    if (err instanceof ExecutionDoesNotExist) return false;
    throw err;
  }
}

/** Stops an execution that still runs (its Catch branches do not run); one that ended is left be. */
export async function stopWorkflow(workflow: Workflow, executionName: string, cause: string): Promise<void> {
  const executionArn = await executionArnOf(workflow, executionName);
  try {
    await sfn.send(new StopExecutionCommand({ executionArn, error: 'Troveless.Stopped', cause }));
  } catch (err) {
    if (err instanceof ExecutionDoesNotExist) return;
    throw err;
  }
}
