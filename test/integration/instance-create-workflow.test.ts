import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intrinsicResolver } from '../../local/intrinsics.ts';
import { resolveService } from '../../local/service.ts';
import { type StepFunctionsServer, startStepFunctionsServer } from '../../local/stepfunctions/server.ts';
import { waitUntil } from '../../local/wait.ts';

// The create workflow's shape, as deployed (serverless.yml resolved as `serverless print` sees
// it), run by the local Step Functions server with its steps answered here: the certificate is
// issued while the server launches when the driver names the server's address first (a port, as
// the local host does), after the launch when it cannot (EC2), and any failure ends in BuildFailed.

const root = resolve(import.meta.dirname, '../..');
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

interface Call {
  step: string;
  input: Record<string, unknown>;
}

/** One create's steps: what each got, and when; the launch answers once `launchGate` opens. */
class Steps {
  readonly calls: Call[] = [];
  portAddresses: string[] = ['127.77.0.9'];
  launchFails = false;
  certificateFails = false;
  /** Whether the launch saw the certificate issued while it waited. */
  launchSawCertificate = false;
  /** The launch waits for the certificate up to this long (ms): proves they overlap. */
  launchWaitsForCertificate = 0;
  sfn?: SFNClient;
  private certificateIssued?: () => void;
  private readonly issued = new Promise<void>((ok) => {
    this.certificateIssued = ok;
  });

  constructor(private readonly names: Record<string, string>) {}

  invoke = async (functionName: string, payload: unknown): Promise<unknown> => {
    const step = Object.entries(this.names).find(([, name]) => name === functionName)?.[0] ?? functionName;
    const input = payload as Record<string, unknown>;
    this.calls.push({ step, input });
    switch (step) {
      case 'taskCreateGuestQueue':
        return { guest_queue_url: 'http://127.0.0.1:1/000000000000/guest-x' };
      case 'taskCreatePort':
        return { addresses: this.portAddresses };
      case 'taskLaunchServer':
        if (this.launchWaitsForCertificate)
          this.launchSawCertificate = await Promise.race([
            this.issued.then(() => true),
            new Promise<boolean>((ok) => setTimeout(() => ok(false), this.launchWaitsForCertificate)),
          ]);
        if (this.launchFails) {
          const err = new Error('no valid host was found');
          err.name = 'NoValidHost';
          throw err;
        }
        return { server_id: 'srv-1' };
      case 'taskIssueCertificate':
        if (this.certificateFails) {
          const err = new Error('the CA could not be read');
          err.name = 'ParameterNotFound';
          throw err;
        }
        this.certificateIssued?.();
        return { serial: 'ab12' };
      case 'taskSendGuestRequest': {
        // The guest's answer comes through the conductor, with the task token.
        const token = String(
          (input.Payload as { task_token?: string } | undefined)?.task_token ?? input.task_token,
        );
        setTimeout(() => {
          void this.sfn?.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"ok":true}' }));
        }, 10);
        return {};
      }
      default:
        return {};
    }
  };

  stepsCalled(): string[] {
    return this.calls.map((c) => c.step);
  }
}

describe('the instance create workflow', () => {
  let names: Record<string, string>;
  let definition: Record<string, unknown>;
  let stateDir: string;
  const servers: StepFunctionsServer[] = [];

  beforeAll(async () => {
    const service = await resolveService('local', root);
    names = Object.fromEntries(Object.entries(service.functions).map(([key, fn]) => [key, fn.name]));
    const machine = Object.values(service.stepFunctions?.stateMachines ?? {}).find((m) =>
      m.name?.endsWith('-instance-create'),
    );
    if (!machine) throw new Error('no instance-create state machine in serverless.yml');
    definition = intrinsicResolver(service, new Map(), 'us-east-1')(machine.definition) as Record<
      string,
      unknown
    >;
    stateDir = await mkdtemp(join(tmpdir(), 'troveless-create-workflow-'));
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) await server.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  async function run(steps: Steps) {
    const server = await startStepFunctionsServer({
      port: 0,
      stateMachines: [{ name: 'instance-create', definition }],
      invokeFunction: steps.invoke,
      stateDir: join(stateDir, randomUUID()),
    });
    servers.push(server);
    const sfn = new SFNClient({ endpoint: server.endpoint, region: 'us-east-1', credentials });
    steps.sfn = sfn;
    const { executionArn } = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:instance-create',
        name: randomUUID(),
        input: JSON.stringify({ project_id: 'p1', instance_id: randomUUID() }),
      }),
    );
    const done = await waitUntil(
      'the create to end',
      async () => {
        const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
        return out.status === 'RUNNING' ? undefined : out;
      },
      { timeoutMs: 30_000 },
    );
    const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
    const entered = (history.events ?? [])
      .map((e) => e.stateEnteredEventDetails?.name)
      .filter((n): n is string => n !== undefined);
    return { done, entered };
  }

  it('issues the certificate for the port while the server launches, then prepares', async () => {
    const steps = new Steps(names);
    // The launch answers only once the certificate is issued (or after 5 s): side by side, it
    // does not wait; one after the other, it would wait the whole 5 s.
    steps.launchWaitsForCertificate = 5_000;
    const { done, entered } = await run(steps);

    expect(done.status).toBe('SUCCEEDED');
    const certificate = steps.calls.filter((c) => c.step === 'taskIssueCertificate');
    expect(certificate).toHaveLength(1);
    expect(certificate[0]?.input).toMatchObject({ project_id: 'p1', addresses: ['127.77.0.9'] });
    // Issued while the launch was still under way (one after the other, it would have waited 5 s).
    expect(steps.launchSawCertificate).toBe(true);
    expect(entered).not.toContain('IssueCertificateAfterLaunch');
    expect(steps.stepsCalled()).toContain('taskMarkReady');
    expect(steps.stepsCalled()).not.toContain('taskBuildFailed');
  });

  it('issues the certificate after the launch when the driver names no address first (EC2)', async () => {
    const steps = new Steps(names);
    steps.portAddresses = [];
    const { done, entered } = await run(steps);

    expect(done.status).toBe('SUCCEEDED');
    const order = steps.stepsCalled();
    const certificate = steps.calls.filter((c) => c.step === 'taskIssueCertificate');
    expect(certificate).toHaveLength(1);
    // No addresses given: the step reads the launched server's from the instance.
    expect(certificate[0]?.input.addresses).toBeUndefined();
    expect(order.indexOf('taskIssueCertificate')).toBeGreaterThan(order.indexOf('taskLaunchServer'));
    expect(order.indexOf('taskSendGuestRequest')).toBeGreaterThan(order.indexOf('taskIssueCertificate'));
    expect(entered).toContain('IssueCertificateAfterLaunch');
  });

  it('ends in BuildFailed with the launch error when the server cannot be launched', async () => {
    const steps = new Steps(names);
    steps.launchFails = true;
    const { done } = await run(steps);

    expect(done.status).toBe('FAILED');
    const failed = steps.calls.filter((c) => c.step === 'taskBuildFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.input).toMatchObject({
      project_id: 'p1',
      error: { Error: 'NoValidHost', Cause: expect.stringContaining('no valid host was found') },
    });
    expect(steps.stepsCalled()).not.toContain('taskSendGuestRequest');
  }, 30_000);

  it('ends in BuildFailed when the certificate cannot be issued, and sends no prepare', async () => {
    const steps = new Steps(names);
    steps.certificateFails = true;
    const { done } = await run(steps);

    expect(done.status).toBe('FAILED');
    const failed = steps.calls.filter((c) => c.step === 'taskBuildFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.input).toMatchObject({ error: { Error: 'ParameterNotFound' } });
    expect(steps.stepsCalled()).not.toContain('taskSendGuestRequest');
  }, 30_000);
});
