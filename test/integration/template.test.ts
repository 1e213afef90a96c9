import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

async function packageStage(stage: string, dir: string): Promise<Template> {
  await run(
    process.execPath,
    [join(root, 'node_modules/serverless/bin/serverless.js'), 'package', '--stage', stage, '--package', dir],
    {
      cwd: root,
      // Dummy credentials: packaging must never need to reach AWS.
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: 'dummy',
        AWS_SECRET_ACCESS_KEY: 'dummy',
        SLS_TELEMETRY_DISABLED: '1',
      },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return JSON.parse(await readFile(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
}

const ofType = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);

describe('serverless package', () => {
  let work: string;
  let dev: Template;
  let local: Template;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'troveless-package-'));
    // One after the other: both builds share serverless-esbuild's work directory.
    dev = await packageStage('dev', join(work, 'dev'));
    local = await packageStage('local', join(work, 'local'));
  }, 120_000);
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('holds the tables, keyed by project, with the id index the workflows need', () => {
    const tables = Object.fromEntries(ofType(dev, 'AWS::DynamoDB::Table'));
    expect(tables.InstancesTable?.Properties).toMatchObject({
      TableName: 'troveless-dev-instances',
      KeySchema: [
        { AttributeName: 'project_id', KeyType: 'HASH' },
        { AttributeName: 'id', KeyType: 'RANGE' },
      ],
    });
    expect(tables.IdempotencyTable?.Properties).toMatchObject({ TimeToLiveSpecification: { Enabled: true } });
  });

  it('holds the conductor and task queues, each redriving to its DLQ', () => {
    const queues = Object.fromEntries(ofType(dev, 'AWS::SQS::Queue'));
    for (const [queue, dlq] of [
      ['ConductorQueue', 'ConductorDeadLetterQueue'],
      ['TaskQueue', 'TaskDeadLetterQueue'],
    ] as const) {
      expect(queues[queue]?.Properties.RedrivePolicy).toMatchObject({
        deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] },
        maxReceiveCount: 5,
      });
    }
  });

  it('routes Trove’s and Keystone’s paths, with a catch-all for Trove’s 404', () => {
    const routes = ofType(dev, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routes).toEqual(
      expect.arrayContaining([
        'GET /',
        'GET /v3',
        'POST /v3/auth/tokens',
        'GET /v1.0/{project_id}/instances',
        '$default',
      ]),
    );
  });

  it('runs the server-status sync on a schedule', () => {
    const rules = ofType(dev, 'AWS::Events::Rule').map(([, r]) => r.Properties.ScheduleExpression);
    expect(rules).toEqual(expect.arrayContaining(['rate(1 minute)', 'rate(5 minutes)']));
  });

  it('gives each function its own role with only what it needs', () => {
    const roles = Object.fromEntries(ofType(dev, 'AWS::IAM::Role'));
    const list = JSON.stringify(roles.InstancesListIamRoleLambdaExecution);
    expect(list).toContain('dynamodb:Query');
    expect(list).not.toContain('dynamodb:PutItem');
    expect(JSON.stringify(roles.IdentityIssueIamRoleLambdaExecution)).not.toContain('dynamodb:');
  });

  it('holds the instance workflows, and keeps the self-test parts out of deployable stages', () => {
    const devMachines = ofType(dev, 'AWS::StepFunctions::StateMachine').map(
      ([, r]) => r.Properties.StateMachineName,
    );
    expect(devMachines.sort()).toEqual([
      'troveless-dev-backup-create',
      'troveless-dev-instance-create',
      'troveless-dev-instance-delete',
      'troveless-dev-instance-restart',
    ]);
    expect(JSON.stringify(dev)).not.toContain('selftest');
    const machines = ofType(local, 'AWS::StepFunctions::StateMachine').map(
      ([, r]) => r.Properties.StateMachineName,
    );
    expect(machines).toContain('troveless-local-selftest-retry-catch');
    const mappings = ofType(local, 'AWS::Lambda::EventSourceMapping').map(([, r]) => r.Properties);
    expect(mappings).toContainEqual(
      expect.objectContaining({ BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] }),
    );
  });
});
