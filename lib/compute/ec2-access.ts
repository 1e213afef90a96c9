import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
  type EC2Client,
  type IpPermission,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import type { ServerAccess } from './driver.ts';

// Trove's access model on EC2: each instance has its own security group (Trove's trove_sg-<id>),
// open on the engine's port to allowed_cidrs, or to 0.0.0.0/0 when there are none (Trove's
// default; whether the instance is reachable from outside its VPC at all is its address's
// matter, not the group's). The group is tagged as a Troveless instance's at creation: the
// functions' IAM statements allow changing and deleting only groups that carry that tag.

export const GROUP_INSTANCE_TAG = 'troveless:instance_id';
/** The engine port the group opens, kept on the group so that an access change needs nothing else. */
export const GROUP_PORT_TAG = 'troveless:port';

export const securityGroupName = (instanceId: string) => `troveless_sg-${instanceId}`;

export interface InstanceGroup {
  id: string;
  port: number;
  /** The IPv4 CIDRs the group allows now on its port. */
  cidrs: string[];
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

/** The CIDRs an access allows: allowed_cidrs, or everyone when there are none (Trove's default). */
export function ingressCidrs(access?: ServerAccess): string[] {
  const cidrs = access?.allowed_cidrs?.length ? access.allowed_cidrs : ['0.0.0.0/0'];
  return [...new Set(cidrs.map(networkCidr))].sort();
}

function groupView(group: SecurityGroup): InstanceGroup {
  const port = Number(group.Tags?.find((t) => t.Key === GROUP_PORT_TAG)?.Value);
  const cidrs = (group.IpPermissions ?? [])
    .filter((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port)
    .flatMap((p) => p.IpRanges ?? [])
    .flatMap((r) => (r.CidrIp ? [r.CidrIp] : []));
  return { id: group.GroupId ?? '', port, cidrs };
}

/** The instance's own group, found by its name and its Troveless tag; undefined when it has none. */
export async function findSecurityGroup(
  client: EC2Client,
  instanceId: string,
  vpcId?: string,
): Promise<InstanceGroup | undefined> {
  const out = await client.send(
    new DescribeSecurityGroupsCommand({
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
      new CreateSecurityGroupCommand({
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
 * Makes the group allow exactly the access's CIDRs on its port: the new ones are authorized
 * first, then the old ones revoked, so that a source in both lists is never cut off.
 */
export async function syncIngress(
  client: EC2Client,
  group: InstanceGroup,
  access?: ServerAccess,
): Promise<void> {
  const wanted = ingressCidrs(access);
  const add = wanted.filter((c) => !group.cidrs.includes(c));
  const remove = group.cidrs.filter((c) => !wanted.includes(c));
  if (add.length) {
    await client
      .send(
        new AuthorizeSecurityGroupIngressCommand({
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
        new RevokeSecurityGroupIngressCommand({
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
      await client.send(new DeleteSecurityGroupCommand({ GroupId: group.id }));
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
