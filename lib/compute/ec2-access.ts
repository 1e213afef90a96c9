import type { EC2Client, IpPermission, SecurityGroup } from '@aws-sdk/client-ec2';
import type { ServerAccess } from './driver.ts';
import { ec2Sdk } from './ec2-sdk.ts';

// Trove's access model on EC2: each instance has its own security group (Trove's trove_sg-<id>),
// open on the engine's port to allowed_cidrs. With none, Trove's group is open to 0.0.0.0/0 and
// is_public decides whether the instance has a public address at all; here an instance may get
// one from its subnet whatever is_public says, so the group itself carries is_public: none and
// public is 0.0.0.0/0, none and not public is the VPC's own CIDRs (reachable on its private
// network only, as Trove's non-public instance is). The group is tagged as a Troveless
// instance's at creation: the functions' IAM statements allow changing and deleting only groups
// that carry that tag.

export const GROUP_INSTANCE_TAG = 'troveless:instance_id';
/** The engine port the group opens, kept on the group so that an access change needs nothing else. */
export const GROUP_PORT_TAG = 'troveless:port';

export const securityGroupName = (instanceId: string) => `troveless_sg-${instanceId}`;

export interface InstanceGroup {
  id: string;
  port: number;
  /** The IPv4 CIDRs the group allows now on its port. */
  cidrs: string[];
  /** The CIDRs it allows now on its other ports (a cluster bus: peers only), by port. */
  others?: Record<number, string[]>;
}

/** A CIDR in its network form (host bits cleared), as EC2 shows it back. */
export function networkCidr(cidr: string): string {
  const [address = '', bits = '32'] = cidr.split('/');
  const prefix = Number(bits);
  const value = address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join('.')}/${prefix}`;
}

/**
 * The CIDRs an access allows: allowed_cidrs; with none, everyone when public, else the private
 * network's CIDRs (the VPC's).
 */
export function ingressCidrs(access: ServerAccess | undefined, privateCidrs: string[]): string[] {
  const cidrs = access?.allowed_cidrs?.length
    ? access.allowed_cidrs
    : access?.is_public
      ? ['0.0.0.0/0']
      : privateCidrs;
  return [...new Set(cidrs.map(networkCidr))].sort();
}

/** Whether ingressCidrs needs the private network's CIDRs for this access. */
export const needsPrivateCidrs = (access?: ServerAccess) =>
  !access?.allowed_cidrs?.length && !access?.is_public;

/** The IPv4 CIDRs of the VPC (the account's default VPC when none is named). */
export async function vpcCidrs(client: EC2Client, vpcId?: string): Promise<string[]> {
  const out = await client.send(
    new (await ec2Sdk()).DescribeVpcsCommand(
      vpcId ? { VpcIds: [vpcId] } : { Filters: [{ Name: 'is-default', Values: ['true'] }] },
    ),
  );
  const vpc = out.Vpcs?.[0];
  const cidrs = (vpc?.CidrBlockAssociationSet ?? [])
    .filter((a) => a.CidrBlockState?.State === 'associated')
    .flatMap((a) => (a.CidrBlock ? [a.CidrBlock] : []));
  if (!cidrs.length && vpc?.CidrBlock) cidrs.push(vpc.CidrBlock);
  if (!cidrs.length) throw new Error(`no IPv4 CIDR found for VPC ${vpcId ?? '(the default VPC)'}`);
  return cidrs;
}

/** The CIDRs a group's rules allow on one TCP port. */
function cidrsOn(group: SecurityGroup, port: number): string[] {
  return (group.IpPermissions ?? [])
    .filter((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port)
    .flatMap((p) => p.IpRanges ?? [])
    .flatMap((r) => (r.CidrIp ? [r.CidrIp] : []));
}

function groupView(group: SecurityGroup): InstanceGroup {
  const port = Number(group.Tags?.find((t) => t.Key === GROUP_PORT_TAG)?.Value);
  const others: Record<number, string[]> = {};
  for (const p of group.IpPermissions ?? [])
    if (p.IpProtocol === 'tcp' && p.FromPort !== undefined && p.FromPort === p.ToPort && p.FromPort !== port)
      others[p.FromPort] = cidrsOn(group, p.FromPort);
  return { id: group.GroupId ?? '', port, cidrs: cidrsOn(group, port), others };
}

/** The instance's own group, found by its name and its Troveless tag; undefined when it has none. */
export async function findSecurityGroup(
  client: EC2Client,
  instanceId: string,
  vpcId?: string,
): Promise<InstanceGroup | undefined> {
  const out = await client.send(
    new (await ec2Sdk()).DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'group-name', Values: [securityGroupName(instanceId)] },
        { Name: `tag:${GROUP_INSTANCE_TAG}`, Values: [instanceId] },
        ...(vpcId ? [{ Name: 'vpc-id', Values: [vpcId] }] : []),
      ],
    }),
  );
  const group = out.SecurityGroups?.[0];
  return group?.GroupId ? groupView(group) : undefined;
}

/** Creates the instance's group, or finds the one an earlier try of the same launch created. */
export async function ensureSecurityGroup(
  client: EC2Client,
  spec: { instanceId: string; vpcId?: string; port: number },
): Promise<InstanceGroup> {
  const found = await findSecurityGroup(client, spec.instanceId, spec.vpcId);
  if (found) return found;
  try {
    const out = await client.send(
      new (await ec2Sdk()).CreateSecurityGroupCommand({
        GroupName: securityGroupName(spec.instanceId),
        Description: `Troveless instance ${spec.instanceId}: its database port`,
        VpcId: spec.vpcId,
        TagSpecifications: [
          {
            ResourceType: 'security-group',
            Tags: [
              { Key: 'Name', Value: securityGroupName(spec.instanceId) },
              { Key: GROUP_INSTANCE_TAG, Value: spec.instanceId },
              { Key: GROUP_PORT_TAG, Value: String(spec.port) },
            ],
          },
        ],
      }),
    );
    return { id: out.GroupId ?? '', port: spec.port, cidrs: [] };
  } catch (err) {
    // A concurrent try created it between the lookup and the create.
    if ((err as Error).name !== 'InvalidGroup.Duplicate') throw err;
    const again = await findSecurityGroup(client, spec.instanceId, spec.vpcId);
    if (!again) throw err;
    return again;
  }
}

const permission = (port: number, cidrs: string[]): IpPermission[] => [
  {
    IpProtocol: 'tcp',
    FromPort: port,
    ToPort: port,
    IpRanges: cidrs.map((CidrIp) => ({ CidrIp, Description: 'allowed_cidrs' })),
  },
];

/**
 * Makes the group allow exactly `wanted` (ingressCidrs) on its port: the new ones are authorized
 * first, then the old ones revoked, so that a source in both lists is never cut off.
 */
export async function syncIngress(client: EC2Client, group: InstanceGroup, wanted: string[]): Promise<void> {
  const add = wanted.filter((c) => !group.cidrs.includes(c));
  const remove = group.cidrs.filter((c) => !wanted.includes(c));
  if (add.length) {
    await client
      .send(
        new (await ec2Sdk()).AuthorizeSecurityGroupIngressCommand({
          GroupId: group.id,
          IpPermissions: permission(group.port, add),
        }),
      )
      .catch((err: Error) => {
        // Another try of the same change got there first.
        if (err.name !== 'InvalidPermission.Duplicate') throw err;
      });
  }
  if (remove.length) {
    await client
      .send(
        new (await ec2Sdk()).RevokeSecurityGroupIngressCommand({
          GroupId: group.id,
          IpPermissions: permission(group.port, remove).map(({ IpRanges, ...p }) => ({
            ...p,
            IpRanges: IpRanges?.map(({ CidrIp }) => ({ CidrIp })),
          })),
        }),
      )
      .catch((err: Error) => {
        if (err.name !== 'InvalidPermission.NotFound') throw err;
      });
  }
}

/**
 * Deletes the instance's group once its instance has let go of it (EC2 answers
 * DependencyViolation until the instance has terminated). A group already gone is fine.
 */
export async function deleteSecurityGroup(
  client: EC2Client,
  instanceId: string,
  vpcId: string | undefined,
  retryDelaysMs: number[] = Array(18).fill(5_000),
): Promise<void> {
  const group = await findSecurityGroup(client, instanceId, vpcId);
  if (!group) return;
  for (let attempt = 0; ; attempt++) {
    try {
      await client.send(new (await ec2Sdk()).DeleteSecurityGroupCommand({ GroupId: group.id }));
      return;
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'InvalidGroup.NotFound') return;
      const delay = retryDelaysMs[attempt];
      if (name !== 'DependencyViolation' || delay === undefined) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
