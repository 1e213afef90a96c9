import type { EC2Client, Instance, RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { SQSClient, TagQueueCommand } from '@aws-sdk/client-sqs';
import {
  AddTagsToResourceCommand,
  DeleteParameterCommand,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import type {
  AgentConfigFile,
  ComputeDriver,
  Server,
  ServerAccess,
  ServerSpec,
  ServerStatus,
} from './driver.ts';
import {
  deleteSecurityGroup,
  ensureSecurityGroup,
  findSecurityGroup,
  ingressCidrs,
  needsPrivateCidrs,
  syncIngress,
  vpcCidrs,
} from './ec2-access.ts';
import { amiExists, replaceRootVolume } from './ec2-rebuild.ts';
import { extendDataVolume, resizeInstance } from './ec2-resize.ts';
import { ec2Sdk } from './ec2-sdk.ts';
import { buildUserData } from './user-data.ts';

// The EC2 driver: one instance per Trove instance, its data on a second EBS volume, its agent
// configured through cloud-init user data. EC2's own ClientToken makes launch idempotent.
// The instance key never travels in user data (readable from IMDS by any process on the guest,
// and through ec2:DescribeInstanceAttribute): it goes to a per-instance SSM SecureString, tagged
// after launch with the instance's ARN, which the guest role may read only from that very
// instance (serverless/guest-keys.yml).

export interface Ec2DriverOptions {
  imageId: string;
  subnetId?: string;
  /** The VPC of subnetId, where each instance's own security group is created (default VPC if unset). */
  vpcId?: string;
  /** Groups every guest joins besides its own (e.g. the operator's management access). */
  securityGroupIds?: string[];
  /** Instance profile name, or its ARN. */
  instanceProfile?: string;
  /** Flavor id -> instance type; flavors not listed are sized by `instanceTypeFor`. */
  instanceTypes?: Record<string, string>;
  /** The data volume's device name (on Nitro instances it appears as an NVMe device). */
  dataDevice?: string;
  /** Where the data volume is mounted on the guest (the agent's baseDir). */
  baseDir?: string;
  /** Optional shell script part of the user data, e.g. formatting and mounting the data volume. */
  userDataScript?: string;
  /** Prefix of the per-instance key parameters, e.g. /troveless/<stage>/guest-keys. */
  keyParameterPrefix: string;
  client?: EC2Client;
  ssm?: SSMClient;
  sqs?: SQSClient;
  /**
   * DescribeInstances is eventually consistent: right after RunInstances it may answer NotFound.
   * `get` retries NotFound after these delays before reporting the server gone.
   */
  notFoundRetryDelaysMs?: number[];
  /**
   * An instance's security group can be deleted only once the instance has terminated (until
   * then EC2 answers DependencyViolation): terminate retries after these delays, then fails (the
   * delete workflow retries the step).
   */
  groupInUseRetryDelaysMs?: number[];
}

export const INSTANCE_ID_TAG = 'troveless:instance_id';
/** The tag on a key parameter that the guest role's policy compares with ec2:SourceInstanceARN. */
export const SERVER_ARN_TAG = 'troveless:server_arn';

/** Graviton sizes, smallest first: [type, vCPUs, memory MiB]. The image must be arm64. */
export const INSTANCE_SIZES: ReadonlyArray<readonly [string, number, number]> = [
  ['t4g.nano', 2, 512],
  ['t4g.micro', 2, 1024],
  ['t4g.small', 2, 2048],
  ['t4g.medium', 2, 4096],
  ['t4g.large', 2, 8192],
  ['t4g.xlarge', 4, 16384],
  ['t4g.2xlarge', 8, 32768],
  ['m7g.4xlarge', 16, 65536],
  ['m7g.8xlarge', 32, 131072],
  ['m7g.12xlarge', 48, 196608],
  ['m7g.16xlarge', 64, 262144],
];

/** The smallest size with at least the flavor's memory (MB, as Trove's flavors) and vCPUs. */
export function instanceTypeFor(flavor: ServerSpec['flavor']): string {
  const size = INSTANCE_SIZES.find(([, vcpus, mem]) => mem >= flavor.ram && vcpus >= flavor.vcpus);
  if (!size)
    throw new Error(`no instance type has ${flavor.ram} MB and ${flavor.vcpus} vCPUs (flavor ${flavor.id})`);
  return size[0];
}

const DEFAULT_PORTS: Record<string, number> = { mysql: 3306, mariadb: 3306, postgresql: 5432, redis: 6379 };

function defaultPort(manager: string): number {
  const port = DEFAULT_PORTS[manager];
  if (port === undefined) throw new Error(`unknown datastore manager ${manager}`);
  return port;
}

const STATES: Record<string, ServerStatus> = {
  pending: 'BUILD',
  running: 'ACTIVE',
  stopping: 'SHUTDOWN',
  stopped: 'SHUTDOWN',
  'shutting-down': 'DELETED',
  terminated: 'DELETED',
};

export function serverFromInstance(instance: Instance): Server {
  const state = instance.State?.Name ?? 'pending';
  const addresses: Server['addresses'] = [];
  if (instance.PrivateIpAddress) addresses.push({ address: instance.PrivateIpAddress, type: 'private' });
  if (instance.PublicIpAddress) addresses.push({ address: instance.PublicIpAddress, type: 'public' });
  const server: Server = {
    id: instance.InstanceId ?? '',
    instance_id: instance.Tags?.find((t) => t.Key === INSTANCE_ID_TAG)?.Value ?? '',
    status: STATES[state] ?? 'ERROR',
    addresses,
  };
  if (instance.StateReason?.Message && server.status !== 'ACTIVE')
    server.fault = instance.StateReason.Message;
  return server;
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && err.name === 'InvalidInstanceID.NotFound';
}

export class Ec2ComputeDriver implements ComputeDriver {
  private client?: EC2Client;
  private readonly ssm: SSMClient;
  private readonly sqs: SQSClient;

  constructor(private readonly options: Ec2DriverOptions) {
    this.client = options.client;
    this.ssm = options.ssm ?? new SSMClient({});
    this.sqs = options.sqs ?? new SQSClient({});
  }

  /** The EC2 client, made on first use (see ec2-sdk.ts for why the SDK loads late). */
  private async ec2(): Promise<EC2Client> {
    this.client ??= new (await ec2Sdk()).EC2Client({});
    return this.client;
  }

  keyParameterName(instanceId: string): string {
    return `${this.options.keyParameterPrefix.replace(/\/+$/, '')}/${instanceId}`;
  }

  /**
   * The RunInstances request for a spec and the instance's own security group; pure, so that a
   * retry sends identical parameters.
   */
  runInstancesInput(spec: ServerSpec, securityGroupId: string): RunInstancesCommandInput {
    const o = this.options;
    // On EC2 the agent uses the instance profile and the real endpoints: none are passed on.
    const { endpoints: _endpoints, credentials: _credentials, key: _key, ...agent } = spec.agent;
    const config: AgentConfigFile = {
      ...agent,
      key_parameter: this.keyParameterName(spec.instance_id),
      layout: {
        baseDir: o.baseDir ?? '/var/lib/troveless',
        port: defaultPort(spec.datastore.manager),
        bindAddress: '0.0.0.0',
      },
      flavor: spec.flavor,
      volume_size_gb: spec.volume_size_gb,
    };
    const tags = [
      { Key: 'Name', Value: spec.name },
      { Key: INSTANCE_ID_TAG, Value: spec.instance_id },
    ];
    return {
      ClientToken: spec.instance_id,
      ImageId: o.imageId,
      InstanceType: (o.instanceTypes?.[spec.flavor.id] ??
        instanceTypeFor(spec.flavor)) as RunInstancesCommandInput['InstanceType'],
      MinCount: 1,
      MaxCount: 1,
      SubnetId: o.subnetId,
      SecurityGroupIds: [...(o.securityGroupIds ?? []), securityGroupId],
      IamInstanceProfile: o.instanceProfile
        ? o.instanceProfile.startsWith('arn:')
          ? { Arn: o.instanceProfile }
          : { Name: o.instanceProfile }
        : undefined,
      BlockDeviceMappings: [
        {
          DeviceName: o.dataDevice ?? '/dev/sdf',
          Ebs: {
            VolumeSize: spec.volume_size_gb,
            VolumeType: 'gp3',
            Encrypted: true,
            DeleteOnTermination: true,
          },
        },
      ],
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
      // IMDSv2 only, one hop: containers on the guest cannot reach the instance's credentials.
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
      UserData: Buffer.from(buildUserData({ config, script: o.userDataScript })).toString('base64'),
    };
  }

  async launch(spec: ServerSpec): Promise<Server> {
    const parameter = this.keyParameterName(spec.instance_id);
    // Overwrite: a retried launch writes the same key again.
    await this.ssm.send(
      new PutParameterCommand({
        Name: parameter,
        Type: 'SecureString',
        Value: spec.agent.key,
        Overwrite: true,
      }),
    );
    // Trove's model: the instance's own group, open on the engine's port to allowed_cidrs only. A
    // retried launch finds the group it made and sends the same RunInstances again.
    const wanted = await this.ingressFor(spec.access);
    const group = await ensureSecurityGroup(await this.ec2(), {
      instanceId: spec.instance_id,
      vpcId: this.options.vpcId,
      port: defaultPort(spec.datastore.manager),
    });
    await syncIngress(await this.ec2(), group, wanted);
    const out = await (await this.ec2())
      .send(new (await ec2Sdk()).RunInstancesCommand(this.runInstancesInput(spec, group.id)))
      .catch(async (err: unknown) => {
        // No instance, no group and no key: a launch that fails for good leaves nothing that no
        // server owns (the delete workflow finds no server to terminate). If the instance did
        // start and only the answer was lost, EC2 refuses (DependencyViolation): group and key
        // stay for it, and the retry finds them.
        const noInstance = await deleteSecurityGroup(
          await this.ec2(),
          spec.instance_id,
          this.options.vpcId,
          [],
        ).then(
          () => true,
          () => false,
        );
        if (noInstance) await this.ssm.send(new DeleteParameterCommand({ Name: parameter })).catch(() => {});
        throw err;
      });
    const instance = out.Instances?.[0];
    if (!instance?.InstanceId) throw new Error(`RunInstances for ${spec.instance_id} returned no instance`);
    // From now on, this instance (and no other) may read its key and its own orders; the agent
    // retries until then.
    const region = await (await this.ec2()).config.region();
    const arn = `arn:aws:ec2:${region}:${out.OwnerId ?? ''}:instance/${instance.InstanceId}`;
    await this.ssm.send(
      new AddTagsToResourceCommand({
        ResourceType: 'Parameter',
        ResourceId: parameter,
        Tags: [{ Key: SERVER_ARN_TAG, Value: arn }],
      }),
    );
    await this.sqs.send(
      new TagQueueCommand({ QueueUrl: spec.agent.guest_queue_url, Tags: { [SERVER_ARN_TAG]: arn } }),
    );
    return serverFromInstance(instance);
  }

  async get(serverId: string): Promise<Server | undefined> {
    const instance = await this.describe(serverId);
    // A terminated instance stays visible for about an hour; for us it no longer exists.
    if (!instance || instance.State?.Name === 'terminated') return undefined;
    return serverFromInstance(instance);
  }

  async findByInstance(instanceId: string): Promise<Server | undefined> {
    const out = await (await this.ec2()).send(
      new (await ec2Sdk()).DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${INSTANCE_ID_TAG}`, Values: [instanceId] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ],
      }),
    );
    const instance = out.Reservations?.flatMap((r) => r.Instances ?? [])[0];
    return instance ? serverFromInstance(instance) : undefined;
  }

  /** The EC2 instance, terminated ones included; undefined when EC2 does not know it. */
  private async describe(serverId: string): Promise<Instance | undefined> {
    const delays = this.options.notFoundRetryDelaysMs ?? [500, 1500];
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await (await this.ec2()).send(
          new (await ec2Sdk()).DescribeInstancesCommand({ InstanceIds: [serverId] }),
        );
        return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === serverId);
      } catch (err) {
        const delay = delays[attempt];
        if (!isNotFound(err)) throw err;
        if (delay === undefined) return undefined;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** The CIDRs the instance's group allows for an access (ec2-access.ts says why). */
  private async ingressFor(access?: ServerAccess): Promise<string[]> {
    const privateCidrs = needsPrivateCidrs(access)
      ? await vpcCidrs(await this.ec2(), this.options.vpcId)
      : [];
    return ingressCidrs(access, privateCidrs);
  }

  /**
   * Trove's update of `access`: the instance's own group is made to allow exactly the new
   * allowed_cidrs (revoking the others) on its port; the instance keeps running.
   */
  async applyAccess(serverId: string, access: ServerAccess): Promise<void> {
    const instance = await this.describe(serverId);
    const instanceId = instance && serverFromInstance(instance).instance_id;
    if (!instanceId || instance.State?.Name === 'terminated')
      throw new Error(`server ${serverId} is gone: its access cannot change`);
    const group = await findSecurityGroup(await this.ec2(), instanceId, this.options.vpcId);
    if (!group) throw new Error(`server ${serverId} has no security group of its own`);
    // A replica set's members reach each other's engine port from their private addresses,
    // whatever allowed_cidrs say (replication).
    const peers = await Promise.all((access.replication_peers ?? []).map((id) => this.describe(id)));
    const peerCidrs = peers.flatMap((p) => (p?.PrivateIpAddress ? [`${p.PrivateIpAddress}/32`] : []));
    const wanted = [...new Set([...(await this.ingressFor(access)), ...peerCidrs])];
    await syncIngress(await this.ec2(), group, wanted);
    // The peer ports (a Redis Cluster's bus) are open to the peers alone, never allowed_cidrs;
    // a port no longer asked for is closed.
    const peerPorts = access.peer_ports ?? [];
    const ports = new Set([...peerPorts, ...Object.keys(group.others ?? {}).map(Number)]);
    for (const port of ports) {
      const current = { id: group.id, port, cidrs: group.others?.[port] ?? [] };
      await syncIngress(await this.ec2(), current, peerPorts.includes(port) ? peerCidrs : []);
    }
  }

  /** Trove's resize on EC2: a new instance type, one step per call (ec2-resize.ts). */
  async resize(serverId: string, flavor: ServerSpec['flavor']): Promise<void> {
    const instance = await this.describe(serverId);
    if (!instance) throw new Error(`server ${serverId} is gone: it cannot be resized`);
    const type = this.options.instanceTypes?.[flavor.id] ?? instanceTypeFor(flavor);
    await resizeInstance(await this.ec2(), instance, type);
  }

  /** Trove's online volume resize on EC2: ModifyVolume on the data volume (ec2-resize.ts). */
  async extendVolume(serverId: string, sizeGb: number): Promise<void> {
    const instance = await this.describe(serverId);
    if (!instance) throw new Error(`server ${serverId} is gone: its volume cannot be extended`);
    await extendDataVolume(await this.ec2(), instance, this.options.dataDevice ?? '/dev/sdf', sizeGb);
  }

  /** A forced stop: the fence must not wait for the guest's OS to shut down cleanly. */
  async stop(serverId: string): Promise<void> {
    await (await this.ec2()).send(
      new (await ec2Sdk()).StopInstancesCommand({ InstanceIds: [serverId], Force: true }),
    );
  }

  /** EC2 reboots in place (the OS restarts; the instance keeps its volumes, type and address). */
  async reboot(serverId: string): Promise<void> {
    await (await this.ec2()).send(new (await ec2Sdk()).RebootInstancesCommand({ InstanceIds: [serverId] }));
  }

  async start(serverId: string): Promise<void> {
    await (await this.ec2()).send(new (await ec2Sdk()).StartInstancesCommand({ InstanceIds: [serverId] }));
  }

  /** A replace-root-volume task from the AMI, the data volume kept (ec2-rebuild.ts). */
  async rebuild(serverId: string, imageId: string, requestToken?: string): Promise<void> {
    await replaceRootVolume(await this.ec2(), serverId, imageId, requestToken);
  }

  async imageExists(imageId: string): Promise<boolean> {
    return amiExists(await this.ec2(), imageId);
  }

  async terminate(serverId: string): Promise<void> {
    // Terminated instances stay visible for a while: a retried terminate still finds its tags.
    const instance = await this.describe(serverId);
    const instanceId = instance && serverFromInstance(instance).instance_id;
    try {
      await (await this.ec2()).send(
        new (await ec2Sdk()).TerminateInstancesCommand({ InstanceIds: [serverId] }),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (instanceId) {
      // Its own group and its key go with it; either gone already is fine.
      await deleteSecurityGroup(
        await this.ec2(),
        instanceId,
        this.options.vpcId,
        this.options.groupInUseRetryDelaysMs,
      );
      await this.ssm
        .send(new DeleteParameterCommand({ Name: this.keyParameterName(instanceId) }))
        .catch((err: unknown) => {
          if (!(err instanceof ParameterNotFound) && (err as Error).name !== 'ParameterNotFound') throw err;
        });
    }
  }
}
