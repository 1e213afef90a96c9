import type { ServerAccess } from '../compute/driver.ts';
import type { InstanceItem } from '../instances/model.ts';
import { getInstance } from '../instances/repository.ts';
import { getCluster } from './repository.ts';
import { strategyOf } from './strategy.ts';

/**
 * A member's access with the other members as peers: each may open connections to its engine
 * port and the strategy's peer ports (Redis's cluster bus: gossip and failover votes; MIGRATE
 * uses the client port), whatever allowed_cidrs say; those ports are restricted like its engine
 * port for everyone else.
 */
export function clusterAccessOf(member: InstanceItem, members: InstanceItem[]): ServerAccess {
  const strategy = strategyOf(member);
  const peers = members.filter((m) => m.id !== member.id && m.server_id).map((m) => m.server_id as string);
  return {
    ...(member.access ?? {}),
    replication_peers: peers,
    peer_ports: strategy.peerPorts(member),
  };
}

/** The access a cluster member's server gets whenever it is applied again (e.g. a new allowed_cidrs). */
export async function memberAccessOf(member: InstanceItem): Promise<ServerAccess> {
  const cluster = member.cluster_id ? await getCluster(member.project_id, member.cluster_id) : undefined;
  if (!cluster) return { ...(member.access ?? {}) };
  const members = await Promise.all(
    cluster.instance_ids.map((id) => (id === member.id ? member : getInstance(member.project_id, id))),
  );
  return clusterAccessOf(
    member,
    members.filter((m): m is InstanceItem => m !== undefined),
  );
}
