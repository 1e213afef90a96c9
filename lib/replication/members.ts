import { memberAccessOf } from '../clusters/access.ts';
import type { ServerAccess } from '../compute/driver.ts';
import { computeDriver } from '../compute/index.ts';
import type { InstanceItem } from '../instances/model.ts';
import { getInstance } from '../instances/repository.ts';

// A replica set as the control plane sees it: the source item and the items of its replicas.

const DEFAULT_PORTS: Record<string, number> = { mysql: 3306, mariadb: 3306, postgresql: 5432, redis: 6379 };

/** Where a member's engine listens, as its replicas connect to it. */
export function endpointOf(item: InstanceItem): { host: string; port: number } {
  const address = item.addresses?.[0];
  if (!address) throw new Error(`instance ${item.id} has no address yet`);
  return { host: address.address, port: address.port ?? DEFAULT_PORTS[item.datastore.manager] ?? 0 };
}

/** The source of `item`'s set (itself when it is one) and every replica that still exists. */
export async function membersOf(item: InstanceItem): Promise<InstanceItem[]> {
  const source = item.replica_of_id ? await getInstance(item.project_id, item.replica_of_id) : item;
  if (!source) return [item];
  const replicas = await Promise.all(
    (source.replica_ids ?? []).map((id) => (id === item.id ? item : getInstance(item.project_id, id))),
  );
  return [source, ...replicas.filter((r): r is InstanceItem => r !== undefined)];
}

/** The member's `access` with the servers of its set as replication peers (a security group's rule). */
export function accessWithPeers(item: InstanceItem, members: InstanceItem[]): ServerAccess {
  const peers = members.filter((m) => m.id !== item.id && m.server_id).map((m) => m.server_id as string);
  return { ...(item.access ?? {}), replication_peers: peers };
}

/** Every member's server may reach every other's engine port (any of them can become the source). */
export async function connectMembers(members: InstanceItem[]): Promise<void> {
  for (const member of members) {
    if (member.server_id)
      await computeDriver().applyAccess(member.server_id, accessWithPeers(member, members));
  }
}

/** The access a member's server gets: with its set's peers when it is in one. */
export async function serverAccessOf(item: InstanceItem): Promise<ServerAccess> {
  if (item.cluster_id) return memberAccessOf(item);
  if (!item.replica_of_id && !item.replica_ids?.length) return { ...(item.access ?? {}) };
  return accessWithPeers(item, await membersOf(item));
}
