import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EC2Client,
  EC2ServiceException,
  type Instance,
  type RunInstancesCommandInput,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-ec2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ParameterNotFound, SSMClient, SSMServiceException } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { keyFromSsm, loadAgentConfig } from '../../agent/config.ts';
import type { AgentConfigFile, ServerSpec } from '../../lib/compute/driver.ts';
import { Ec2ComputeDriver, instanceTypeFor, serverFromInstance } from '../../lib/compute/ec2.ts';
import { computeDriver } from '../../lib/compute/index.ts';
import { LocalComputeDriver } from '../../lib/compute/local.ts';
import { buildUserData } from '../../lib/compute/user-data.ts';

const spec: ServerSpec = {
  instance_id: '7d0c3a5e-54f4-4d8b-9a57-1c2a4d6b8e90',
  name: 'orders-db',
  flavor: { id: '2', ram: 2048, vcpus: 1 },
  volume_size_gb: 20,
  datastore: { manager: 'postgresql', version: '15' },
  agent: {
    instance_id: '7d0c3a5e-54f4-4d8b-9a57-1c2a4d6b8e90',
    datastore_manager: 'postgresql',
    datastore_version: '15',
    key: 'c2VjcmV0LWtleS1vZi10aGUtaW5zdGFuY2U=',
    guest_queue_url: 'https://sqs.eu-west-1.amazonaws.com/123/guest-7d0c',
    conductor_queue_url: 'https://sqs.eu-west-1.amazonaws.com/123/conductor',
    region: 'eu-west-1',
    report_interval: 10,
    endpoints: { AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324' },
    credentials: { accessKeyId: 'local', secretAccessKey: 'local-secret' },
  },
};

interface Call {
  command: string;
  input: ServiceInputTypes;
}

/**
 * A real EC2Client whose requests stop at the first middleware step: the test sees each
 * command's input and answers it, and nothing is signed or sent.
 */
function fakeEc2(answer: (call: Call) => ServiceOutputTypes) {
  const calls: Call[] = [];
  const client = new EC2Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const call = { command: context.commandName ?? '', input: args.input as ServiceInputTypes };
      calls.push(call);
      return { output: answer(call), response: {} };
    },
    { step: 'initialize', name: 'fakeEc2' },
  );
  return { client, calls };
}

/** The same for SSM: the key parameter calls. */
function fakeSsm(answer: (call: Call) => object = () => ({ $metadata: {} })) {
  const calls: Call[] = [];
  const client = new SSMClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const call = { command: context.commandName ?? '', input: args.input as ServiceInputTypes };
      calls.push(call);
      return { output: answer(call) as ServiceOutputTypes, response: {} };
    },
    { step: 'initialize', name: 'fakeSsm' },
  );
  return { client, calls };
}

/** And for SQS: tagging the guest queue. */
function fakeSqs() {
  const calls: Call[] = [];
  const client = new SQSClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      calls.push({ command: context.commandName ?? '', input: args.input as ServiceInputTypes });
      return { output: { $metadata: {} } as ServiceOutputTypes, response: {} };
    },
    { step: 'initialize', name: 'fakeSqs' },
  );
  return { client, calls };
}

const KEYS = '/troveless/test/guest-keys';
/** Options every driver in these tests shares: a key parameter prefix and an SSM that answers. */
const base = () => ({ keyParameterPrefix: KEYS, ssm: fakeSsm().client, sqs: fakeSqs().client });

function notFound(): never {
  throw new EC2ServiceException({
    name: 'InvalidInstanceID.NotFound',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: "The instance ID 'i-0abc' does not exist",
  });
}

const pending: Instance = {
  InstanceId: 'i-0abc',
  State: { Name: 'pending', Code: 0 },
  PrivateIpAddress: '10.0.1.23',
  Tags: [{ Key: 'troveless:instance_id', Value: spec.instance_id }],
};

/** A minimal multipart/mixed reader: enough to check the message is well formed. */
function parseMime(text: string) {
  const [head = '', ...rest] = text.split('\n\n');
  const boundary = /boundary="([^"]+)"/.exec(head)?.[1];
  if (!boundary) throw new Error('no boundary');
  const body = rest.join('\n\n');
  const sections = body.split(`--${boundary}`);
  expect(sections.at(-1)?.trim()).toBe('--'); // closing delimiter
  return {
    head,
    parts: sections.slice(1, -1).map((section) => {
      const [partHead = '', ...partBody] = section.replace(/^\n/, '').split('\n\n');
      return { headers: partHead, body: partBody.join('\n\n') };
    }),
  };
}

describe('Ec2ComputeDriver', () => {
  it('launches with the instance id as ClientToken, a gp3 data volume, tags and IMDSv2', async () => {
    const { client, calls } = fakeEc2((call) => {
      if (call.command === 'DescribeSecurityGroupsCommand') return { SecurityGroups: [], $metadata: {} };
      if (call.command === 'CreateSecurityGroupCommand') return { GroupId: 'sg-own', $metadata: {} };
      if (call.command === 'AuthorizeSecurityGroupIngressCommand') return { Return: true, $metadata: {} };
      if (call.command === 'DescribeVpcsCommand')
        return { Vpcs: [{ VpcId: 'vpc-1', CidrBlock: '10.0.0.0/16' }], $metadata: {} };
      return { Instances: [pending], OwnerId: '123456789012', $metadata: {} };
    });
    const ssm = fakeSsm();
    const sqs = fakeSqs();
    const driver = new Ec2ComputeDriver({
      ...base(),
      ssm: ssm.client,
      sqs: sqs.client,
      client,
      imageId: 'ami-0123',
      subnetId: 'subnet-1',
      securityGroupIds: ['sg-1', 'sg-2'],
      instanceProfile: 'troveless-guest',
    });

    const server = await driver.launch(spec);

    expect(server).toEqual({
      id: 'i-0abc',
      instance_id: spec.instance_id,
      status: 'BUILD',
      addresses: [{ address: '10.0.1.23', type: 'private' }],
    });
    // Its own security group first (compute-ec2-access.test.ts), then the instance in it.
    expect(calls.map((c) => c.command)).toEqual([
      'DescribeVpcsCommand',
      'DescribeSecurityGroupsCommand',
      'CreateSecurityGroupCommand',
      'AuthorizeSecurityGroupIngressCommand',
      'RunInstancesCommand',
    ]);
    const input = calls[4]?.input as RunInstancesCommandInput;
    expect(input).toMatchObject({
      ClientToken: spec.instance_id,
      ImageId: 'ami-0123',
      InstanceType: 't4g.small',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-1',
      SecurityGroupIds: ['sg-1', 'sg-2', 'sg-own'],
      IamInstanceProfile: { Name: 'troveless-guest' },
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/sdf',
          Ebs: { VolumeSize: 20, VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true },
        },
      ],
    });
    // IMDSv2 only, one hop: nothing beyond the instance itself (e.g. a container) reaches IMDS.
    expect(input.MetadataOptions).toEqual({
      HttpTokens: 'required',
      HttpEndpoint: 'enabled',
      HttpPutResponseHopLimit: 1,
    });
    // The key went to the instance's own SecureString first, tagged with its ARN after launch.
    expect(ssm.calls).toEqual([
      {
        command: 'PutParameterCommand',
        input: {
          Name: `${KEYS}/${spec.instance_id}`,
          Type: 'SecureString',
          Value: spec.agent.key,
          Overwrite: true,
        },
      },
      {
        command: 'AddTagsToResourceCommand',
        input: {
          ResourceType: 'Parameter',
          ResourceId: `${KEYS}/${spec.instance_id}`,
          Tags: [
            { Key: 'troveless:server_arn', Value: 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc' },
          ],
        },
      },
    ]);
    // Its queue too: the guest role receives only from a queue tagged with its own ARN.
    expect(sqs.calls).toEqual([
      {
        command: 'TagQueueCommand',
        input: {
          QueueUrl: spec.agent.guest_queue_url,
          Tags: { 'troveless:server_arn': 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc' },
        },
      },
    ]);
    const tags = [
      { Key: 'Name', Value: 'orders-db' },
      { Key: 'troveless:instance_id', Value: spec.instance_id },
    ];
    expect(input.TagSpecifications).toContainEqual({ ResourceType: 'instance', Tags: tags });
  });

  it('sends identical parameters on a retried launch (EC2 rejects a ClientToken reused with others)', () => {
    const driver = new Ec2ComputeDriver({ ...base(), imageId: 'ami-0123', client: fakeEc2(notFound).client });
    expect(driver.runInstancesInput(spec, 'sg-own')).toEqual(
      driver.runInstancesInput(structuredClone(spec), 'sg-own'),
    );
  });

  it('puts the agent config in a cloud-config part written 0600, the key only as its parameter name', () => {
    const driver = new Ec2ComputeDriver({
      ...base(),
      imageId: 'ami-0123',
      client: fakeEc2(notFound).client,
      userDataScript: '#!/bin/sh\necho prepare\n',
      instanceProfile: 'arn:aws:iam::123:instance-profile/troveless-guest',
    });
    const input = driver.runInstancesInput(spec, 'sg-own');
    expect(input.IamInstanceProfile).toEqual({ Arn: 'arn:aws:iam::123:instance-profile/troveless-guest' });

    const mime = parseMime(Buffer.from(input.UserData ?? '', 'base64').toString('utf8'));
    expect(mime.head).toContain('MIME-Version: 1.0');
    expect(mime.head).toMatch(/^Content-Type: multipart\/mixed; boundary=/);
    expect(mime.parts.map((p) => /^Content-Type: ([^;\n]+)/.exec(p.headers)?.[1])).toEqual([
      'text/cloud-config',
      'text/x-shellscript',
    ]);
    expect(mime.parts[1]?.body).toContain('echo prepare');

    const cloudConfig = mime.parts[0]?.body ?? '';
    expect(cloudConfig.startsWith('#cloud-config\n')).toBe(true);
    const doc = parseYaml(cloudConfig) as {
      write_files: { path: string; permissions: string; owner: string; encoding: string; content: string }[];
      runcmd: string[][];
    };
    expect(doc.write_files).toHaveLength(2);
    const file = doc.write_files[0]!;
    // The agent's unit gets the runtime environment every agent runs with, before its first start.
    expect(doc.write_files[1]).toMatchObject({
      path: '/etc/systemd/system/troveless-guestagent.service.d/troveless-runtime.conf',
      permissions: '0644',
      owner: 'root:root',
    });
    expect(Buffer.from(doc.write_files[1]?.content ?? '', 'base64').toString('utf8')).toBe(
      '[Service]\nEnvironment="MALLOC_ARENA_MAX=2"\nEnvironment="NODE_OPTIONS=--max-semi-space-size=1"\n',
    );
    expect(file).toMatchObject({
      path: '/etc/troveless/agent.json',
      permissions: '0600',
      owner: 'root:root',
    });
    expect(file.encoding).toBe('b64');
    const config = JSON.parse(Buffer.from(file.content, 'base64').toString('utf8')) as AgentConfigFile;
    expect(config).toMatchObject({
      instance_id: spec.instance_id,
      key_parameter: `${KEYS}/${spec.instance_id}`,
      guest_queue_url: spec.agent.guest_queue_url,
      layout: { baseDir: '/var/lib/troveless', port: 5432, bindAddress: '0.0.0.0' },
      flavor: spec.flavor,
      volume_size_gb: 20,
    });
    // On EC2 the instance profile and the real endpoints are used: nothing local leaks in.
    expect(config.endpoints).toBeUndefined();
    expect(config.credentials).toBeUndefined();
    // The key is nowhere in the user data (IMDS serves it to every process on the guest).
    expect(config.key).toBeUndefined();
    const raw = Buffer.from(input.UserData ?? '', 'base64').toString('utf8');
    const key = Buffer.from(spec.agent.key, 'base64');
    for (const form of [
      spec.agent.key,
      key.toString('base64url'),
      key.toString('hex'),
      key.toString('latin1'),
    ])
      expect(raw).not.toContain(form);
    expect(Buffer.from(cloudConfig).includes(key)).toBe(false);
    expect(Buffer.from(file.content, 'base64').includes(key)).toBe(false);
    expect(doc.runcmd).toContainEqual(['systemctl', 'enable', '--now', 'troveless-guestagent.service']);
  });

  it('builds user data without a script part when none is given, and never with a key', () => {
    const { key, ...agent } = spec.agent;
    const config = {
      ...agent,
      layout: { baseDir: '/d', port: 1, bindAddress: '0.0.0.0' },
      flavor: spec.flavor,
    };
    const mime = parseMime(buildUserData({ config: { ...config, volume_size_gb: 1 } }));
    expect(mime.parts).toHaveLength(1);
    expect(() => buildUserData({ config: { ...config, key, volume_size_gb: 1 } })).toThrow(/must not travel/);
  });

  it('sizes instances from the flavor, or takes an explicit map', () => {
    expect(instanceTypeFor({ id: '1', ram: 512, vcpus: 1 })).toBe('t4g.nano');
    expect(instanceTypeFor({ id: '1', ram: 4096, vcpus: 2 })).toBe('t4g.medium');
    expect(instanceTypeFor({ id: '1', ram: 4096, vcpus: 4 })).toBe('t4g.xlarge');
    expect(instanceTypeFor({ id: '1', ram: 40_000, vcpus: 2 })).toBe('m7g.4xlarge');
    expect(() => instanceTypeFor({ id: '1', ram: 10_000_000, vcpus: 1 })).toThrow(/no instance type/);
    const driver = new Ec2ComputeDriver({
      ...base(),
      imageId: 'ami-1',
      instanceTypes: { '2': 'r7g.large' },
      client: fakeEc2(notFound).client,
    });
    expect(driver.runInstancesInput(spec, 'sg-own').InstanceType).toBe('r7g.large');
  });

  it('maps EC2 states to server statuses', () => {
    const status = (Name: string) =>
      serverFromInstance({ ...pending, State: { Name: Name as 'pending' } }).status;
    expect(status('pending')).toBe('BUILD');
    expect(status('running')).toBe('ACTIVE');
    expect(status('stopping')).toBe('SHUTDOWN');
    expect(status('stopped')).toBe('SHUTDOWN');
    expect(status('shutting-down')).toBe('DELETED');
  });

  it('gets a server, and undefined once it is terminated or unknown', async () => {
    let state = 'running';
    const { client, calls } = fakeEc2((call) => {
      if (call.command !== 'DescribeInstancesCommand') throw new Error(call.command);
      if (state === 'unknown') notFound();
      return {
        Reservations: [{ Instances: [{ ...pending, State: { Name: state as 'running' } }] }],
        $metadata: {},
      };
    });
    const driver = new Ec2ComputeDriver({
      ...base(),
      imageId: 'ami-1',
      client,
      notFoundRetryDelaysMs: [0, 0],
    });
    expect(await driver.get('i-0abc')).toMatchObject({ id: 'i-0abc', status: 'ACTIVE' });
    expect(calls[0]?.input).toEqual({ InstanceIds: ['i-0abc'] });
    state = 'terminated';
    expect(await driver.get('i-0abc')).toBeUndefined();
    state = 'unknown';
    calls.length = 0;
    expect(await driver.get('i-0abc')).toBeUndefined();
    expect(calls).toHaveLength(3); // NotFound right after launch can be eventual consistency
  });

  it('terminates, treating an unknown instance as already gone', async () => {
    const { client, calls } = fakeEc2(notFound);
    const ssm = fakeSsm();
    const driver = new Ec2ComputeDriver({
      ...base(),
      ssm: ssm.client,
      imageId: 'ami-1',
      client,
      notFoundRetryDelaysMs: [],
    });
    await expect(driver.terminate('i-0abc')).resolves.toBeUndefined();
    expect(calls.map((c) => c.command)).toEqual(['DescribeInstancesCommand', 'TerminateInstancesCommand']);
    expect(calls[1]?.input).toEqual({ InstanceIds: ['i-0abc'] });
    expect(ssm.calls).toEqual([]);
  });

  it('deletes the key parameter with its server, a parameter already gone included', async () => {
    const { client, calls } = fakeEc2((call) =>
      call.command === 'DescribeInstancesCommand'
        ? { Reservations: [{ Instances: [{ ...pending, State: { Name: 'running' } }] }], $metadata: {} }
        : call.command === 'DescribeSecurityGroupsCommand'
          ? { SecurityGroups: [], $metadata: {} }
          : { $metadata: {} },
    );
    let gone = false;
    const ssm = fakeSsm(() => {
      if (gone) throw new ParameterNotFound({ $metadata: {}, message: 'gone' });
      return { $metadata: {} };
    });
    const driver = new Ec2ComputeDriver({ ...base(), ssm: ssm.client, imageId: 'ami-1', client });
    await driver.terminate('i-0abc');
    expect(calls.map((c) => c.command)).toEqual([
      'DescribeInstancesCommand',
      'TerminateInstancesCommand',
      'DescribeSecurityGroupsCommand',
    ]);
    expect(ssm.calls).toEqual([
      { command: 'DeleteParameterCommand', input: { Name: `${KEYS}/${spec.instance_id}` } },
    ]);
    gone = true;
    await expect(driver.terminate('i-0abc')).resolves.toBeUndefined();

    const failing = fakeEc2(() => {
      throw new EC2ServiceException({
        name: 'UnauthorizedOperation',
        $fault: 'client',
        $metadata: {},
        message: 'You are not authorized to perform this operation.',
      });
    });
    await expect(
      new Ec2ComputeDriver({ ...base(), imageId: 'ami-1', client: failing.client }).terminate('i-0abc'),
    ).rejects.toThrow(/not authorized/);
  });
});

describe('computeDriver', () => {
  it('is local by default and ec2 when configured', () => {
    expect(computeDriver({ TROVELESS_COMPUTE_ENDPOINT: 'http://127.0.0.1:1' })).toBeInstanceOf(
      LocalComputeDriver,
    );
    expect(
      computeDriver({
        TROVELESS_COMPUTE_DRIVER: 'ec2',
        TROVELESS_EC2_IMAGE_ID: 'ami-1',
        AWS_REGION: 'eu-west-1',
      }),
    ).toBeInstanceOf(Ec2ComputeDriver);
    expect(() => computeDriver({ TROVELESS_COMPUTE_DRIVER: 'ec2' })).toThrow(/TROVELESS_EC2_IMAGE_ID/);
    expect(() => computeDriver({ TROVELESS_COMPUTE_DRIVER: 'nova' })).toThrow(/local or ec2/);
  });
});

describe('the agent on EC2', () => {
  it('reads its key from the parameter named in its config, waiting until it may', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agent-config-'));
    try {
      const path = join(dir, 'agent.json');
      const { key: _key, ...agent } = spec.agent;
      await writeFile(path, JSON.stringify({ ...agent, key_parameter: `${KEYS}/x` }));
      let refusals = 2;
      const ssm = fakeSsm((call) => {
        if (refusals-- > 0)
          throw new SSMServiceException({
            name: 'AccessDeniedException',
            $fault: 'client',
            $metadata: {},
            message: 'not yet tagged',
          });
        expect(call.input).toEqual({ Name: `${KEYS}/x`, WithDecryption: true });
        return { Parameter: { Value: spec.agent.key }, $metadata: {} };
      });
      const loaded = await loadAgentConfig(path, (name) => keyFromSsm(name, ssm.client, [0, 0, 0]));
      expect(loaded.key).toBe(spec.agent.key);
      expect(ssm.calls).toHaveLength(3);

      const never = fakeSsm(() => {
        throw new SSMServiceException({
          name: 'AccessDeniedException',
          $fault: 'client',
          $metadata: {},
          message: 'denied',
        });
      });
      await expect(keyFromSsm('p', never.client, [0])).rejects.toThrow(/denied/);
      expect(never.calls).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
