import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

/** The serverless CLI with dummy credentials: packaging and printing must never need to reach AWS. */
function serverless(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [join(root, 'node_modules/serverless/bin/serverless.js'), ...args], {
    cwd: root,
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'dummy',
      AWS_SECRET_ACCESS_KEY: 'dummy',
      SLS_TELEMETRY_DISABLED: '1',
      ...env,
    },
    maxBuffer: 16 * 1024 * 1024,
  });
}

async function packageStage(stage: string, dir: string, temp: string): Promise<Template> {
  // Bundled outside the repository, never into a local cloud's handler build; with a temp dir of
  // its own, to see what packaging leaves there.
  await mkdir(temp, { recursive: true });
  await serverless(['package', '--stage', stage, '--package', dir], {
    TROVELESS_BUILD_DIR: relative(root, `${dir}-build`),
    TMPDIR: temp,
  });
  return JSON.parse(await readFile(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
}

/**
 * The local stage's configuration as serverless resolves it (`serverless print`): what the local
 * stage adds to a deployable one (its self-test) shows there without bundling every handler a
 * second time, which `package` did for ~40 s of the suite.
 */
type Printed = {
  resources: Template;
  stepFunctions: { stateMachines: Record<string, { name: string }> };
};
async function printStage(stage: string): Promise<Printed> {
  const { stdout } = await serverless(['print', '--stage', stage, '--format', 'json']);
  return JSON.parse(stdout) as Printed;
}

const ofType = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);

describe('serverless package', () => {
  let work: string;
  let dev: Template;
  let local: Printed;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'troveless-package-'));
    // One after the other: serverless stages its work through the service's own `.serverless/`.
    dev = await packageStage('dev', join(work, 'dev'), join(work, 'tmp'));
    local = await printStage('local');
  }, 120_000);
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('leaves nothing in the temp dir (serverless-esbuild stages each zip there and leaks it)', async () => {
    expect(await readdir(join(work, 'tmp'))).toEqual([]);
  });

  it('holds the tables, keyed by project, with the id index the workflows need', () => {
    const tables = Object.fromEntries(ofType(dev, 'AWS::DynamoDB::Table'));
    expect(tables.InstancesTable?.Properties).toMatchObject({
      TableName: 'troveless-dev-instances',
      KeySchema: [
        { AttributeName: 'project_id', KeyType: 'HASH' },
        { AttributeName: 'id', KeyType: 'RANGE' },
      ],
    });
    // Modules are keyed by project too; admins find one by id through its index.
    expect(tables.ModulesTable?.Properties).toMatchObject({
      TableName: 'troveless-dev-modules',
      KeySchema: [
        { AttributeName: 'project_id', KeyType: 'HASH' },
        { AttributeName: 'id', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [{ IndexName: 'by-id' }],
    });
    // Nothing in production keeps idempotency records; the local stage's self-test has its own.
    expect(tables.IdempotencyTable).toBeUndefined();
    expect(local.resources.Resources.SelftestTable?.Properties).toMatchObject({
      TableName: 'troveless-local-idempotency',
    });
  });

  it('holds the conductor queue, redriving to its DLQ, and no queue nothing uses', () => {
    const queues = Object.fromEntries(ofType(dev, 'AWS::SQS::Queue'));
    expect(Object.keys(queues).sort()).toEqual(['ConductorDeadLetterQueue', 'ConductorQueue']);
    for (const [queue, dlq] of [['ConductorQueue', 'ConductorDeadLetterQueue']] as const) {
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

  it('expires published logs after the one guest_log_expiry the log view shows', () => {
    const bucket = Object.fromEntries(ofType(dev, 'AWS::S3::Bucket')).BackupBucket;
    const lifecycle = bucket?.Properties.LifecycleConfiguration as { Rules: unknown[] } | undefined;
    const rules = lifecycle?.Rules;
    expect(rules).toEqual([expect.objectContaining({ Prefix: 'database_logs/', ExpirationInDays: 30 })]);
    const [, fn] = ofType(dev, 'AWS::Lambda::Function')[0] ?? [];
    const env = fn?.Properties.Environment as { Variables: Record<string, string> } | undefined;
    expect(env?.Variables.TROVELESS_GUEST_LOG_EXPIRY).toBe(String(30 * 86_400));
  });

  it('gives each function its own role with only what it needs', () => {
    const roles = Object.fromEntries(ofType(dev, 'AWS::IAM::Role'));
    const list = JSON.stringify(roles.InstancesListIamRoleLambdaExecution);
    expect(list).toContain('dynamodb:Query');
    expect(list).not.toContain('dynamodb:PutItem');
    // Login reads the identity table and counts failures, and nothing else of DynamoDB.
    const issue = JSON.stringify(roles.IdentityIssueIamRoleLambdaExecution);
    expect(issue).toContain('IdentityTable');
    expect(issue).not.toMatch(/InstancesTable|QuotasTable|dynamodb:PutItem|dynamodb:DeleteItem/);
  });

  it('ships no user directory and no default password: only the identity table and a bootstrap', async () => {
    const tables = Object.fromEntries(ofType(dev, 'AWS::DynamoDB::Table'));
    expect(tables.IdentityTable?.Properties).toMatchObject({
      TableName: 'troveless-dev-identity',
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      GlobalSecondaryIndexes: [expect.objectContaining({ IndexName: 'by-name' })],
    });
    expect(ofType(dev, 'Custom::IdentityBootstrap')).toHaveLength(1);
    const text = JSON.stringify(dev);
    expect(text).not.toMatch(/identity\.json|identity-seed|scrypt\$/);
    // Every packaged file of every function: no directory, no seeded hash, no default login.
    const zips = (await readdir(join(work, 'dev'))).filter((f) => f.endsWith('.zip'));
    expect(zips.length).toBeGreaterThan(10);
    const seed = await readFile(join(root, 'local/identity-seed.json'), 'utf8');
    const hashes = [...seed.matchAll(/"(scrypt\$[^"]+)"/g)].map((m) => m[1] ?? '');
    expect(hashes.length).toBeGreaterThan(0);
    for (const zip of zips) {
      const { stdout: names } = await run('unzip', ['-Z1', join(work, 'dev', zip)]);
      expect(names).not.toMatch(/identity\.json|identity-seed/);
      const { stdout: content } = await run('unzip', ['-p', join(work, 'dev', zip)], {
        maxBuffer: 256 * 1024 * 1024,
      });
      for (const hash of hashes) expect(content.includes(hash), `${zip} holds a seeded hash`).toBe(false);
    }
  });

  it('holds the guest key-encryption key and the one role EC2 guests run with', () => {
    expect(ofType(dev, 'AWS::KMS::Key')).toHaveLength(1);
    const roles = Object.fromEntries(ofType(dev, 'AWS::IAM::Role'));
    const guest = JSON.stringify(roles.GuestRole?.Properties);
    // A guest reads only the key parameter tagged with its own instance's ARN.
    expect(guest).toContain('ssm:resourceTag/troveless:server_arn');
    expect(guest).toContain('{ec2:SourceInstanceARN}');
    // and receives only from its own queue, tagged the same way at launch.
    expect(guest).toContain('aws:ResourceTag/troveless:server_arn');
    expect(guest).not.toContain('kms:');
    // No guest reads published logs (plaintext), its own or another project's.
    type Statement = { Effect: string; Action: string[]; Resource: unknown };
    const props = roles.GuestRole?.Properties as
      | { Policies: { PolicyDocument: { Statement: Statement[] } }[] }
      | undefined;
    const statements = (props?.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
    // Guests publish logs only through the API's upload grants: no rights of their own there.
    expect(statements).toContainEqual({
      Effect: 'Deny',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['BackupBucket', 'Arn'] }, '/database_logs/*']] },
    });
    expect(
      statements.filter((s) => s.Effect === 'Allow' && JSON.stringify(s).includes('database_logs')),
    ).toEqual([]);
    // Only the functions that wrap or unwrap guest keys may use the KMS key.
    const withKms = Object.entries(roles)
      .filter(([, r]) => JSON.stringify(r).includes('kms:Decrypt'))
      .map(([id]) => id.replace(/IamRoleLambdaExecution$/, ''));
    expect(withKms.sort()).toEqual(
      [
        'BackupScheduler',
        'Backups',
        'Conductor',
        'Configurations',
        'InstanceData',
        'InstancesConfiguration',
        'InstancesCreate',
        'InstancesDelete', // a sync source whose last replica goes is told not to wait
        'InstancesLogs', // guest log calls: signs orders with the guest key
        'Modules', // module contents: sealed under a wrapped data key, and sent sealed to guests
        'InstancesUpdate', // PUT replication.mode tells each member's guest; an upgrade's backup key
        'MgmtInstances', // the management stop is a guest call, signed with the guest key
        'TaskIssueCertificate', // seals the instance's TLS key with the guest key
        'TaskLaunchServer',
        'TaskModuleReapply', // a module's contents again: its data key, then sealed to the guest
        'TaskMarkReady', // a replica ready: its source is told to wait for it (sync mode)
        'TaskReplicaDetached', // the source left without replicas stops waiting
        'TaskSendBackupRequest',
        'TaskSendGuestRequest',
        // Replication: the snapshot's data key and the set's account go sealed with the guest key.
        'TaskSnapshotSource',
        'TaskReplicationOrder',
        'TaskReplicationFinish',
        // A re-seed: the snapshot's data key to the source, the set's account to the member.
        'TaskReseedPlan',
        'TaskReseedSnapshot',
        'TaskReseedRestore',
        // Clusters: members' guest keys made and wrapped, and cluster orders signed with them.
        'ClustersCreate',
        'ClustersRoot', // one root password, sent sealed to every member
        'TaskClusterForm',
        'TaskClusterCheck',
        'ClustersAction', // grow: the new members' guest keys made and wrapped
        // Grow and shrink: the strategy's orders to the members' guests, signed with their keys.
        'TaskClusterGrowAdd',
        'TaskClusterGrowCheck',
        'TaskClusterShrinkRemove',
        'TaskClusterShrinkCheck',
        // Rolling actions: a member's configuration or upgrade backup key, and the cluster's check.
        'TaskClusterRollingNext',
        'TaskClusterRollingHealthy',
        // A guest opening its doorbell proves it holds its instance key (lib/conductor/doorbell.ts).
        'DoorbellConnect',
      ].sort(),
    );
    expect(JSON.stringify(roles.IdentityIssueIamRoleLambdaExecution)).not.toContain('kms:');
  });

  it('has the guests’ doorbell: a WebSocket API whose connections only order senders may post to', () => {
    type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
    const roles = Object.fromEntries(ofType(dev, 'AWS::IAM::Role')) as Record<
      string,
      { Properties: { Policies?: { PolicyDocument: { Statement: Statement[] } }[] } }
    >;
    const statementsOf = (id: string) =>
      (roles[id]?.Properties.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
    const functionsWith = (match: (s: Statement) => boolean) =>
      Object.keys(roles)
        .filter((id) => id.endsWith('IamRoleLambdaExecution') && statementsOf(id).some(match))
        .map((id) => id.replace(/IamRoleLambdaExecution$/, ''))
        .sort();
    const allows = (s: Statement, action: string) =>
      s.Effect === 'Allow' && [s.Action].flat().includes(action);
    const onDoorbells = (s: Statement) => JSON.stringify(s.Condition ?? {}).includes('doorbell#*');
    const apis = ofType(dev, 'AWS::ApiGatewayV2::Api').map(([, r]) => r.Properties.ProtocolType);
    expect(apis).toContain('WEBSOCKET');
    // Every function that sends a guest an order rings it, and none else posts to a connection.
    const senders = functionsWith(
      (s) => allows(s, 'sqs:SendMessage') && JSON.stringify(s.Resource).includes('-guest-*'),
      // The queue steps make and remove queues; the launch tags one (EC2): none sends an order.
    ).filter((id) => !['TaskCreateGuestQueue', 'TaskDeleteGuestQueue', 'TaskLaunchServer'].includes(id));
    expect(senders.length).toBeGreaterThan(10);
    expect(functionsWith((s) => allows(s, 'execute-api:ManageConnections'))).toEqual(senders);
    // Of the grants scoped to doorbells, only $connect's writes one and only the delete workflow's
    // queue step's removes one (functions that call guests may also write any item of the
    // operations table: guestCalls, the orders' records).
    expect(functionsWith((s) => allows(s, 'dynamodb:PutItem') && onDoorbells(s))).toEqual([
      'DoorbellConnect',
    ]);
    expect(functionsWith((s) => allows(s, 'dynamodb:DeleteItem') && onDoorbells(s))).toEqual([
      'TaskDeleteGuestQueue',
    ]);
    // The keep-alive route reads and writes nothing.
    expect(
      statementsOf('DoorbellKeepaliveIamRoleLambdaExecution').filter((s) => s.Effect === 'Allow'),
    ).toEqual(
      statementsOf('DoorbellKeepaliveIamRoleLambdaExecution').filter(
        (s) => s.Effect === 'Allow' && [s.Action].flat().every((a) => a.startsWith('logs:')),
      ),
    );
  });

  it('lets only the certificate-issuing function reach the instance CA', () => {
    const roles = Object.fromEntries(ofType(dev, 'AWS::IAM::Role'));
    const withCa = Object.entries(roles)
      .filter(([, r]) => JSON.stringify(r).includes('/instance-ca'))
      .map(([id]) => id.replace(/IamRoleLambdaExecution$/, ''));
    expect(withCa).toEqual(['TaskIssueCertificate']);
    const statement = JSON.stringify(roles.TaskIssueCertificateIamRoleLambdaExecution);
    expect(statement).toContain('ssm:GetParameter');
    expect(statement).toContain('ssm:PutParameter');
    expect(statement).not.toContain('ssm:DeleteParameter');
  });

  it('grants nothing on "*" but what the AWS API allows no other way, each for its reason', () => {
    // Actions without resource-level permissions: AWS accepts only "*" for them.
    const allowedOnAnyResource: Record<string, string> = {
      'states:ListStateMachines': 'no resource type; lib/workflows.ts finds the stack’s machines by name',
      'states:SendTaskSuccess': 'task-token actions have no resource type (the conductor checks orders)',
      'states:SendTaskFailure': 'task-token actions have no resource type (the conductor checks orders)',
      'states:SendTaskHeartbeat': 'task-token actions have no resource type (the conductor checks orders)',
      'ec2:DescribeInstances': 'EC2 Describe* actions support no resource-level permissions',
      'ec2:DescribeSecurityGroups': 'EC2 Describe* actions support no resource-level permissions',
      'ec2:DescribeVpcs': 'EC2 Describe* actions support no resource-level permissions',
      'ec2:DescribeVolumes': 'EC2 Describe* actions support no resource-level permissions',
      'ec2:DescribeVolumesModifications': 'EC2 Describe* actions support no resource-level permissions',
      'ec2:DescribeImages': 'EC2 Describe* actions support no resource-level permissions',
      'ec2:DescribeReplaceRootVolumeTasks': 'EC2 Describe* actions support no resource-level permissions',
      'logs:CreateLogGroup': 'created by the framework for each function (log group ARN, not "*")',
    };
    const offenders: string[] = [];
    for (const [roleId, role] of ofType(dev, 'AWS::IAM::Role')) {
      const policies = (role.Properties.Policies ?? []) as Array<{
        PolicyDocument: {
          Statement: Array<{ Action: string | string[]; Resource: unknown; Effect: string }>;
        };
      }>;
      for (const statement of policies.flatMap((p) => p.PolicyDocument.Statement)) {
        const resources = [statement.Resource].flat();
        if (!resources.includes('*')) continue;
        for (const action of [statement.Action].flat())
          if (!allowedOnAnyResource[action]) offenders.push(`${roleId}: ${action}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('passes only the guest role, only to EC2, and terminates only tagged servers', () => {
    const statements = ofType(dev, 'AWS::IAM::Role').flatMap(([roleId, r]) =>
      (
        (r.Properties.Policies ?? []) as Array<{
          PolicyDocument: { Statement: Array<Record<string, unknown>> };
        }>
      )
        .flatMap((p) => p.PolicyDocument.Statement)
        .map((s) => ({
          roleId,
          Resource: s.Resource,
          Condition: s.Condition,
          actions: [s.Action].flat() as string[],
        })),
    );
    const passing = statements.filter((s) => s.actions.includes('iam:PassRole'));
    expect(passing.map((s) => s.roleId)).toEqual(['TaskLaunchServerIamRoleLambdaExecution']);
    for (const s of passing) {
      expect(s.actions).toEqual(['iam:PassRole']);
      expect(s.Resource).toEqual({ 'Fn::GetAtt': ['GuestRole', 'Arn'] });
      expect(s.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
    }
    const terminating = statements.filter((s) => s.actions.includes('ec2:TerminateInstances'));
    expect(terminating.map((s) => s.roleId)).toEqual(['TaskTerminateServerIamRoleLambdaExecution']);
    for (const s of terminating)
      expect(s.Condition).toEqual({ StringLike: { 'aws:ResourceTag/troveless:instance_id': '?*' } });
    const launching = statements.filter((s) => s.actions.includes('ec2:CreateTags'));
    for (const s of launching)
      expect(s.Condition).toMatchObject({ StringLike: { 'aws:RequestTag/troveless:instance_id': '?*' } });
    // Instances' own security groups: tagged at creation only, and only tagged ones changed or deleted.
    const sgArn = (r: unknown) => JSON.stringify(r).includes('security-group/*');
    for (const s of launching.filter((s) => sgArn(s.Resource)))
      expect(s.Condition).toMatchObject({ StringEquals: { 'ec2:CreateAction': 'CreateSecurityGroup' } });
    for (const s of statements.filter(
      (s) => s.actions.includes('ec2:CreateSecurityGroup') && sgArn(s.Resource),
    ))
      expect(s.Condition).toEqual({ StringLike: { 'aws:RequestTag/troveless:instance_id': '?*' } });
    const changing = statements.filter((s) =>
      s.actions.some((a) => /^ec2:(Authorize|Revoke)SecurityGroupIngress$|^ec2:DeleteSecurityGroup$/.test(a)),
    );
    expect(new Set(changing.map((s) => s.roleId))).toEqual(
      new Set([
        'TaskLaunchServerIamRoleLambdaExecution',
        'InstancesUpdateIamRoleLambdaExecution',
        'TaskTerminateServerIamRoleLambdaExecution',
        // A replica set's members open their groups to each other (join, promote/eject, detach).
        'TaskJoinReplicaSetIamRoleLambdaExecution',
        'TaskReplicationFinishIamRoleLambdaExecution',
        'TaskReplicaDetachedIamRoleLambdaExecution',
        // A re-seeded member is opened to its set again; a cluster's members to each other's bus.
        'TaskReseedPlanIamRoleLambdaExecution',
        'TaskClusterConnectIamRoleLambdaExecution',
        // A grown cluster's old and new members are opened to each other.
        'TaskClusterGrowConnectIamRoleLambdaExecution',
      ]),
    );
    for (const s of changing)
      expect(s.Condition).toEqual({ StringLike: { 'aws:ResourceTag/troveless:instance_id': '?*' } });
    for (const s of statements.filter((s) => s.actions.includes('states:StartExecution')))
      expect(JSON.stringify(s.Resource)).toContain(':stateMachine:troveless-dev-');
    // The scheduled sync only looks.
    const sync = statements.filter((s) => s.roleId === 'SyncServerStatusIamRoleLambdaExecution');
    const ec2 = sync.flatMap((s) => s.actions).filter((a) => a.startsWith('ec2:') || a.startsWith('iam:'));
    expect(ec2).toEqual(['ec2:DescribeInstances']);
  });

  it('holds the instance workflows, and keeps the self-test parts out of deployable stages', () => {
    const devMachines = ofType(dev, 'AWS::StepFunctions::StateMachine').map(
      ([, r]) => r.Properties.StateMachineName,
    );
    expect(devMachines.sort()).toEqual([
      'troveless-dev-backup-create',
      'troveless-dev-cluster-configuration',
      'troveless-dev-cluster-create',
      'troveless-dev-cluster-delete',
      'troveless-dev-cluster-grow',
      'troveless-dev-cluster-restart',
      'troveless-dev-cluster-shrink',
      'troveless-dev-cluster-upgrade',
      'troveless-dev-instance-create',
      'troveless-dev-instance-delete',
      'troveless-dev-instance-resize-flavor',
      'troveless-dev-instance-resize-volume',
      'troveless-dev-instance-restart',
      'troveless-dev-instance-upgrade',
      'troveless-dev-module-reapply',
      'troveless-dev-replica-detach',
      'troveless-dev-replica-eject',
      'troveless-dev-replica-promote',
      'troveless-dev-replica-reseed',
    ]);
    expect(JSON.stringify(dev)).not.toContain('selftest');
    const machines = Object.values(local.stepFunctions.stateMachines).map((m) => m.name);
    expect(machines).toContain('troveless-local-selftest-retry-catch');
    // The conductor reads its queue in batches and reports which messages failed.
    const mappings = ofType(dev, 'AWS::Lambda::EventSourceMapping').map(([, r]) => r.Properties);
    expect(mappings).toContainEqual(
      expect.objectContaining({ BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] }),
    );
  });
});
