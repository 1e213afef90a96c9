import {
  EC2Client,
  EC2ServiceException,
  type Instance,
  type IpPermission,
  type SecurityGroup,
  type ServiceOutputTypes,
} from '@aws-sdk/client-ec2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import type { ServerSpec } from '../../lib/compute/driver.ts';
import { Ec2ComputeDriver } from '../../lib/compute/ec2.ts';
import { ingressCidrs, networkCidr } from '../../lib/compute/ec2-access.ts';

// The EC2 driver's security group per instance (Trove's trove_sg-<id>), against a small fake
// EC2 that keeps groups and one instance in memory and answers as EC2 does (Duplicate,
// DependencyViolation while the instance holds its group). Pure unit test: nothing leaves.

interface Call {
  command: string;
  input: Record<string, unknown>;
}

function ec2Error(name: string, message = name): EC2ServiceException {
  return new EC2ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: 400 }, message });
}

class FakeEc2 {
  readonly calls: Call[] = [];
  readonly groups = new Map<string, SecurityGroup>();
  instance: Instance | undefined;
  /** Terminated instances let go of their groups only after this many DeleteSecurityGroup tries. */
  releaseAfter = 0;
  /** RunInstances fails with this error; 'lost': the instance starts but the answer is lost. */
  failRunInstances: string | undefined;
  /** Called after each DescribeSecurityGroups is answered (a concurrent caller's moment). */
  afterGroupLookup: () => void = () => {};
  readonly client: EC2Client;
  private nextGroup = 1;

  constructor() {
    this.client = new EC2Client({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    this.client.middlewareStack.add(
      (_next, context) => async (args) => {
        const call = { command: context.commandName ?? '', input: args.input as Record<string, unknown> };
        this.calls.push(call);
        return { output: this.answer(call) as ServiceOutputTypes, response: {} };
      },
      { step: 'initialize', name: 'fakeEc2' },
    );
  }

  commands = () => this.calls.map((c) => c.command);
  /** The CIDRs a group allows on a port. */
  cidrsOf(groupId: string, port: number): string[] {
    return (this.groups.get(groupId)?.IpPermissions ?? [])
      .filter((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port)
      .flatMap((p) => p.IpRanges ?? [])
      .map((r) => r.CidrIp ?? '')
      .sort();
  }

  private answer({ command, input }: Call): object {
    const out = { $metadata: {} };
    switch (command) {
      case 'DescribeSecurityGroupsCommand': {
        const filters = (input.Filters ?? []) as { Name: string; Values: string[] }[];
        const matches = [...this.groups.values()].filter((g) =>
          filters.every((f) => {
            if (f.Name === 'group-name') return f.Values.includes(g.GroupName ?? '');
            if (f.Name === 'vpc-id') return f.Values.includes(g.VpcId ?? '');
            if (f.Name.startsWith('tag:'))
              return g.Tags?.some((t) => t.Key === f.Name.slice(4) && f.Values.includes(t.Value ?? ''));
            throw new Error(`filter ${f.Name}`);
          }),
        );
        const answer = { ...out, SecurityGroups: structuredClone(matches) };
        this.afterGroupLookup();
        return answer;
      }
      case 'CreateSecurityGroupCommand': {
        const name = input.GroupName as string;
        if ([...this.groups.values()].some((g) => g.GroupName === name && g.VpcId === input.VpcId))
          throw ec2Error('InvalidGroup.Duplicate');
        const id = `sg-${this.nextGroup++}`;
        const specs = input.TagSpecifications as { ResourceType: string; Tags: SecurityGroup['Tags'] }[];
        this.groups.set(id, {
          GroupId: id,
          GroupName: name,
          VpcId: input.VpcId as string,
          Tags: specs.find((t) => t.ResourceType === 'security-group')?.Tags,
          IpPermissions: [],
        });
        return { ...out, GroupId: id };
      }
      case 'AuthorizeSecurityGroupIngressCommand':
      case 'RevokeSecurityGroupIngressCommand': {
        const group = this.groups.get(input.GroupId as string);
        if (!group) throw ec2Error('InvalidGroup.NotFound');
        for (const p of input.IpPermissions as IpPermission[]) {
          for (const range of p.IpRanges ?? []) {
            const perms = group.IpPermissions ?? [];
            const at = perms.findIndex(
              (q) => q.FromPort === p.FromPort && q.IpRanges?.[0]?.CidrIp === range.CidrIp,
            );
            if (command.startsWith('Authorize')) {
              if (at >= 0) throw ec2Error('InvalidPermission.Duplicate');
              perms.push({
                IpProtocol: p.IpProtocol,
                FromPort: p.FromPort,
                ToPort: p.ToPort,
                IpRanges: [range],
              });
            } else if (at >= 0) perms.splice(at, 1);
          }
        }
        return { ...out, Return: true };
      }
      case 'DescribeVpcsCommand': {
        const vpc = {
          VpcId: 'vpc-1',
          CidrBlock: '10.20.0.0/16',
          CidrBlockAssociationSet: [
            { CidrBlock: '10.20.0.0/16', CidrBlockState: { State: 'associated' } },
            { CidrBlock: '10.21.0.0/16', CidrBlockState: { State: 'associated' } },
            { CidrBlock: '10.99.0.0/16', CidrBlockState: { State: 'disassociated' } },
          ],
        };
        const ids = input.VpcIds as string[] | undefined;
        return { ...out, Vpcs: ids?.includes('vpc-1') ? [vpc] : [] };
      }
      case 'DeleteSecurityGroupCommand': {
        const id = input.GroupId as string;
        if (!this.groups.has(id)) throw ec2Error('InvalidGroup.NotFound');
        const holds =
          this.instance?.SecurityGroups?.some((g) => g.GroupId === id) &&
          (this.instance.State?.Name !== 'terminated' || this.releaseAfter-- > 0);
        if (holds) throw ec2Error('DependencyViolation', `resource ${id} has a dependent object`);
        this.groups.delete(id);
        return out;
      }
      case 'RunInstancesCommand': {
        if (this.failRunInstances && this.failRunInstances !== 'lost') throw ec2Error(this.failRunInstances);
        this.instance ??= {
          InstanceId: 'i-0abc',
          State: { Name: 'pending', Code: 0 },
          PrivateIpAddress: '10.0.1.23',
          SecurityGroups: (input.SecurityGroupIds as string[]).map((GroupId) => ({ GroupId })),
          Tags: (input.TagSpecifications as { ResourceType: string; Tags: Instance['Tags'] }[]).find(
            (t) => t.ResourceType === 'instance',
          )?.Tags,
        };
        if (this.failRunInstances === 'lost') throw ec2Error('RequestTimeout', 'lost');
        return { ...out, Instances: [this.instance], OwnerId: '123456789012' };
      }
      case 'DescribeInstancesCommand':
        if (!this.instance) throw ec2Error('InvalidInstanceID.NotFound');
        return { ...out, Reservations: [{ Instances: [structuredClone(this.instance)] }] };
      case 'TerminateInstancesCommand':
        if (this.instance) this.instance.State = { Name: 'terminated', Code: 48 };
        return out;
      default:
        throw new Error(`unexpected ${command}`);
    }
  }
}

/** SSM and SQS that accept every call (the key parameter and the queue tag; compute-ec2.test.ts). */
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
const accept = () => async () => ({ output: { $metadata: {} } as never, response: {} });
/** The key parameters that exist, by name. */
const parameters = new Set<string>();
function quietSsm(): SSMClient {
  const client = new SSMClient({ region: 'eu-west-1', credentials });
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const name = (args.input as { Name?: string }).Name ?? '';
      if (context.commandName === 'PutParameterCommand') parameters.add(name);
      if (context.commandName === 'DeleteParameterCommand') parameters.delete(name);
      return { output: { $metadata: {} } as never, response: {} };
    },
    { step: 'initialize', name: 'quiet' },
  );
  return client;
}
function quietSqs(): SQSClient {
  const client = new SQSClient({ region: 'eu-west-1', credentials });
  client.middlewareStack.add(accept, { step: 'initialize', name: 'quiet' });
  return client;
}

const spec = (access?: ServerSpec['access']): ServerSpec => ({
  instance_id: '7d0c3a5e-54f4-4d8b-9a57-1c2a4d6b8e90',
  name: 'orders-db',
  flavor: { id: '2', ram: 2048, vcpus: 1 },
  volume_size_gb: 20,
  datastore: { manager: 'postgresql', version: '15' },
  access,
  agent: {
    instance_id: '7d0c3a5e-54f4-4d8b-9a57-1c2a4d6b8e90',
    datastore_manager: 'postgresql',
    datastore_version: '15',
    key: 'a2V5',
    guest_queue_url: 'https://sqs.eu-west-1.amazonaws.com/123/guest-7d0c',
    conductor_queue_url: 'https://sqs.eu-west-1.amazonaws.com/123/conductor',
    region: 'eu-west-1',
    report_interval: 10,
  },
});

function setup() {
  const ec2 = new FakeEc2();
  const driver = new Ec2ComputeDriver({
    imageId: 'ami-1',
    vpcId: 'vpc-1',
    subnetId: 'subnet-1',
    securityGroupIds: ['sg-ops'],
    keyParameterPrefix: '/troveless/test/guest-keys',
    client: ec2.client,
    ssm: quietSsm(),
    sqs: quietSqs(),
    notFoundRetryDelaysMs: [],
    groupInUseRetryDelaysMs: [0, 0, 0],
  });
  return { ec2, driver };
}

const ownGroup = (ec2: FakeEc2) => {
  const [group, ...others] = [...ec2.groups.values()];
  expect(others).toEqual([]);
  return group as SecurityGroup & { GroupId: string };
};

describe('EC2 security group per instance', () => {
  it('launches the instance into its own tagged group, open on its port to allowed_cidrs only', async () => {
    const { ec2, driver } = setup();
    await driver.launch(spec({ is_public: false, allowed_cidrs: ['10.1.2.3/16', '192.0.2.0/24'] }));
    const group = ownGroup(ec2);
    expect(group).toMatchObject({
      GroupName: `troveless_sg-${spec().instance_id}`,
      VpcId: 'vpc-1',
      Tags: expect.arrayContaining([
        { Key: 'troveless:instance_id', Value: spec().instance_id },
        { Key: 'troveless:port', Value: '5432' },
      ]),
    });
    // Host bits cleared, as EC2 keeps a CIDR; nothing else, and no other port.
    expect(ec2.cidrsOf(group.GroupId, 5432)).toEqual(['10.1.0.0/16', '192.0.2.0/24']);
    expect(group.IpPermissions?.every((p) => p.FromPort === 5432 && p.ToPort === 5432)).toBe(true);
    const run = ec2.calls.find((c) => c.command === 'RunInstancesCommand');
    expect(run?.input.SecurityGroupIds).toEqual(['sg-ops', group.GroupId]);
  });

  it('opens to everyone with no allowed_cidrs when public, and to its VPC only when not', async () => {
    const pub = setup();
    await pub.driver.launch(spec({ is_public: true }));
    expect(pub.ec2.cidrsOf(ownGroup(pub.ec2).GroupId, 5432)).toEqual(['0.0.0.0/0']);
    expect(pub.ec2.commands()).not.toContain('DescribeVpcsCommand');
    // Not public: its private network only (the VPC's associated CIDRs), whatever address the
    // subnet gives it; no access at all is not public either.
    for (const access of [{ is_public: false, allowed_cidrs: [] }, undefined]) {
      const priv = setup();
      await priv.driver.launch(spec(access));
      expect(priv.ec2.cidrsOf(ownGroup(priv.ec2).GroupId, 5432)).toEqual(['10.20.0.0/16', '10.21.0.0/16']);
      expect(priv.ec2.calls.find((c) => c.command === 'DescribeVpcsCommand')?.input).toEqual({
        VpcIds: ['vpc-1'],
      });
    }
  });

  it('fails the launch, creating no instance, when its VPC has no CIDR to open to', async () => {
    const { ec2 } = setup();
    const driver = new Ec2ComputeDriver({
      imageId: 'ami-1',
      vpcId: 'vpc-gone',
      keyParameterPrefix: '/troveless/test/guest-keys',
      client: ec2.client,
      ssm: quietSsm(),
      sqs: quietSqs(),
    });
    await expect(driver.launch(spec())).rejects.toThrow(/no IPv4 CIDR found for VPC vpc-gone/);
    expect(ec2.commands()).toEqual(['DescribeVpcsCommand']);
  });

  it('removes its group and key when RunInstances fails, and keeps them when the instance did start', async () => {
    const { ec2, driver } = setup();
    ec2.failRunInstances = 'InsufficientInstanceCapacity';
    const key = `/troveless/test/guest-keys/${spec().instance_id}`;
    parameters.clear();
    await expect(driver.launch(spec())).rejects.toThrow(/InsufficientInstanceCapacity/);
    expect(ec2.groups.size).toBe(0);
    expect(parameters.has(key)).toBe(false);
    // The instance started but the answer was lost: group and key stay, and the retry finds both.
    ec2.failRunInstances = 'lost';
    await expect(driver.launch(spec())).rejects.toThrow(/lost/);
    expect(ec2.groups.size).toBe(1);
    expect(parameters.has(key)).toBe(true);
    ec2.failRunInstances = undefined;
    const server = await driver.launch(spec());
    expect(server.id).toBe('i-0abc');
    expect(ec2.instance?.SecurityGroups).toEqual([{ GroupId: 'sg-ops' }, { GroupId: ownGroup(ec2).GroupId }]);
  });

  it('finds its group again on a retried launch, and sends the same RunInstances', async () => {
    const { ec2, driver } = setup();
    await driver.launch(spec({ allowed_cidrs: ['10.0.0.0/8'] }));
    await driver.launch(spec({ allowed_cidrs: ['10.0.0.0/8'] }));
    const group = ownGroup(ec2);
    expect(ec2.cidrsOf(group.GroupId, 5432)).toEqual(['10.0.0.0/8']);
    expect(ec2.commands().filter((c) => c === 'CreateSecurityGroupCommand')).toHaveLength(1);
    const runs = ec2.calls.filter((c) => c.command === 'RunInstancesCommand').map((c) => c.input);
    expect(runs).toHaveLength(2);
    expect(runs[1]).toEqual(runs[0]);
  });

  it('takes the group a concurrent launch created between its lookup and its create', async () => {
    const { ec2, driver } = setup();
    // The other launch's group appears right after this one's first lookup.
    ec2.afterGroupLookup = () => {
      ec2.afterGroupLookup = () => {};
      ec2.groups.set('sg-other', {
        GroupId: 'sg-other',
        GroupName: `troveless_sg-${spec().instance_id}`,
        VpcId: 'vpc-1',
        Tags: [
          { Key: 'troveless:instance_id', Value: spec().instance_id },
          { Key: 'troveless:port', Value: '5432' },
        ],
        IpPermissions: [],
      });
    };
    await driver.launch(spec());
    expect(ownGroup(ec2).GroupId).toBe('sg-other');
    expect(ec2.cidrsOf('sg-other', 5432)).toEqual(['10.20.0.0/16', '10.21.0.0/16']);
  });

  it('applies a new allowed_cidrs to the running instance: new ones authorized, old ones revoked', async () => {
    const { ec2, driver } = setup();
    const server = await driver.launch(spec({ allowed_cidrs: ['10.0.0.0/8', '192.0.2.0/24'] }));
    const group = ownGroup(ec2).GroupId;
    ec2.calls.length = 0;

    await driver.applyAccess(server.id, {
      is_public: false,
      allowed_cidrs: ['192.0.2.0/24', '198.51.100.7/32'],
    });
    expect(ec2.cidrsOf(group, 5432)).toEqual(['192.0.2.0/24', '198.51.100.7/32']);
    // Authorized before revoked (a source in both lists is never cut off); no restart of any kind.
    expect(ec2.commands()).toEqual([
      'DescribeInstancesCommand',
      'DescribeSecurityGroupsCommand',
      'AuthorizeSecurityGroupIngressCommand',
      'RevokeSecurityGroupIngressCommand',
    ]);
    expect(ec2.calls[2]?.input.IpPermissions).toEqual([
      {
        IpProtocol: 'tcp',
        FromPort: 5432,
        ToPort: 5432,
        IpRanges: [{ CidrIp: '198.51.100.7/32', Description: 'allowed_cidrs' }],
      },
    ]);
    expect(ec2.calls[3]?.input.IpPermissions).toEqual([
      { IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, IpRanges: [{ CidrIp: '10.0.0.0/8' }] },
    ]);

    // The same list again changes nothing; public with no list opens to everyone, and only that.
    ec2.calls.length = 0;
    await driver.applyAccess(server.id, { allowed_cidrs: ['198.51.100.7/32', '192.0.2.0/24'] });
    expect(ec2.commands()).toEqual(['DescribeInstancesCommand', 'DescribeSecurityGroupsCommand']);
    await driver.applyAccess(server.id, { is_public: true });
    expect(ec2.cidrsOf(group, 5432)).toEqual(['0.0.0.0/0']);
    // No longer public: back to its private network, at once.
    await driver.applyAccess(server.id, { is_public: false });
    expect(ec2.cidrsOf(group, 5432)).toEqual(['10.20.0.0/16', '10.21.0.0/16']);
  });

  it("opens the engine port to a replica set's members by their private addresses", async () => {
    const { ec2, driver } = setup();
    const server = await driver.launch(spec({ allowed_cidrs: ['192.0.2.0/24'] }));
    const group = ownGroup(ec2).GroupId;
    // The one instance the fake holds stands for the peer (its private address 10.0.1.23).
    await driver.applyAccess(server.id, { allowed_cidrs: ['192.0.2.0/24'], replication_peers: [server.id] });
    expect(ec2.cidrsOf(group, 5432)).toEqual(['10.0.1.23/32', '192.0.2.0/24']);
    await driver.applyAccess(server.id, { allowed_cidrs: ['192.0.2.0/24'] });
    expect(ec2.cidrsOf(group, 5432)).toEqual(['192.0.2.0/24']);
  });

  it("opens a cluster's peer ports (its bus) to the peers only, and closes them when no longer asked", async () => {
    const { ec2, driver } = setup();
    const server = await driver.launch(spec({ allowed_cidrs: ['192.0.2.0/24'] }));
    const group = ownGroup(ec2).GroupId;
    const access = { allowed_cidrs: ['192.0.2.0/24'], replication_peers: [server.id], peer_ports: [15432] };
    await driver.applyAccess(server.id, access);
    await driver.applyAccess(server.id, access);
    expect(ec2.cidrsOf(group, 5432)).toEqual(['10.0.1.23/32', '192.0.2.0/24']);
    expect(ec2.cidrsOf(group, 15432)).toEqual(['10.0.1.23/32']);
    await driver.applyAccess(server.id, { allowed_cidrs: ['192.0.2.0/24'] });
    expect(ec2.cidrsOf(group, 15432)).toEqual([]);
    expect(ec2.cidrsOf(group, 5432)).toEqual(['192.0.2.0/24']);
  });

  it('refuses to change the access of a server that is gone', async () => {
    const { ec2, driver } = setup();
    const server = await driver.launch(spec());
    await driver.terminate(server.id);
    await expect(driver.applyAccess(server.id, { allowed_cidrs: ['10.0.0.0/8'] })).rejects.toThrow(/is gone/);
    expect(ec2.groups.size).toBe(0);
  });

  it('deletes the group at terminate once the instance lets go of it; a second terminate is fine', async () => {
    const { ec2, driver } = setup();
    const server = await driver.launch(spec());
    ec2.releaseAfter = 2; // EC2 answers DependencyViolation twice while the instance shuts down
    await driver.terminate(server.id);
    expect(ec2.groups.size).toBe(0);
    expect(ec2.commands().filter((c) => c === 'DeleteSecurityGroupCommand')).toHaveLength(3);
    await expect(driver.terminate(server.id)).resolves.toBeUndefined();
  });

  it('fails a terminate whose group stays in use, and the retried terminate finishes it', async () => {
    const { ec2, driver } = setup();
    const server = await driver.launch(spec());
    ec2.releaseAfter = 10;
    await expect(driver.terminate(server.id)).rejects.toThrow(/dependent object/);
    expect(ec2.groups.size).toBe(1);
    ec2.releaseAfter = 0;
    await driver.terminate(server.id);
    expect(ec2.groups.size).toBe(0);
  });

  it('keeps CIDRs in their network form, each once', () => {
    expect(networkCidr('10.1.2.3/16')).toBe('10.1.0.0/16');
    expect(networkCidr('198.51.100.7/32')).toBe('198.51.100.7/32');
    expect(networkCidr('255.255.255.255/0')).toBe('0.0.0.0/0');
    expect(networkCidr('172.16.5.200/25')).toBe('172.16.5.128/25');
    // An explicit list is what is allowed, public or not, each network once.
    for (const is_public of [true, false])
      expect(
        ingressCidrs({ is_public, allowed_cidrs: ['10.1.2.3/16', '10.1.0.0/16'] }, ['10.20.0.0/16']),
      ).toEqual(['10.1.0.0/16']);
  });
});
