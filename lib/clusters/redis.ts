import { config } from '../config.ts';
import { callGuest } from '../guest/calls.ts';
import type { InstanceItem } from '../instances/model.ts';
import { endpointOf } from '../replication/members.ts';
import { type ClusterInfo, notFormed, planSlots } from './slots.ts';
import type { ClusterStrategy } from './strategy.ts';

// Redis Cluster through the members' guests (Trove's redis strategy: cluster_meet, then the
// slots): each call is safe to repeat, so a retried step changes nothing twice.

const call = (member: InstanceItem, method: string, args: Record<string, unknown> = {}) =>
  callGuest(member, method, args, { timeoutSeconds: config.callLowTimeoutSeconds });

/** Redis Cluster's bus listens 10000 above the client port (Redis's default cluster-port). */
export const CLUSTER_BUS_OFFSET = 10000;

/** Thrown while the members do not all see one whole cluster yet; the workflow asks again. */
export class ClusterPending extends Error {
  override name = 'Troveless.ClusterPending';
}

/**
 * The first member meets every other (gossip then introduces them to each other), and each
 * master gets its even share of the 16384 slots, in member order.
 */
export async function formRedisCluster(members: InstanceItem[]): Promise<void> {
  const [first, ...others] = members;
  if (!first) throw new Error('a cluster without members cannot be formed');
  for (const other of others) {
    const { host, port } = endpointOf(other);
    await call(first, 'cluster_meet', { host, port });
  }
  const plan = planSlots(members.length);
  for (const [i, member] of members.entries()) await call(member, 'cluster_addslots', { ranges: [plan[i]] });
}

/** Returns once CLUSTER INFO says cluster_state:ok, with every slot and member, on every member. */
export async function checkRedisCluster(members: InstanceItem[]): Promise<void> {
  const infos = [];
  for (const member of members)
    infos.push({ id: member.id, info: (await call(member, 'cluster_info')) as ClusterInfo });
  const reason = notFormed(infos, members.length);
  if (reason) throw new ClusterPending(`The cluster is not formed yet: ${reason}.`);
}

/** Redis Cluster: masters only today, each with its bus port open to the others. */
export const redisStrategy: ClusterStrategy = {
  minMembers: 3,
  peerPorts: (member) => [(member.addresses?.[0]?.port ?? 6379) + CLUSTER_BUS_OFFSET],
  form: formRedisCluster,
  check: checkRedisCluster,
};
