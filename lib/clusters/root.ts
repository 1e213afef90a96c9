import { randomBytes } from 'node:crypto';
import { loadReadyInstance } from '../databases/instance.ts';
import { enableRoot, rootEnabled, rootUserName } from '../databases/service.ts';
import type { InstanceItem } from '../instances/model.ts';
import type { ClusterItem } from './model.ts';
import { membersOf } from './repository.ts';

/** Trove's cluster root_index: the root history of the cluster's first member. */
export async function clusterRootEnabled(cluster: ClusterItem): Promise<boolean> {
  const [first] = await membersOf(cluster);
  return first ? rootEnabled(first) : false;
}

/**
 * Trove's cluster root_create: one password (given, or generated once) on every member, since a
 * Redis Cluster client authenticates to every node with the same one. Every member must be up
 * first (Trove's 422 otherwise), so that none is left behind with another password.
 */
export async function enableClusterRoot(
  cluster: ClusterItem,
  userId: string,
  password?: string,
): Promise<{ name: string; password: string }> {
  const members: InstanceItem[] = [];
  for (const id of cluster.instance_ids)
    members.push(await loadReadyInstance(cluster.project_id, id, { redis: 'root' }));
  const secret = password ?? randomBytes(27).toString('base64url');
  await Promise.all(members.map((m) => enableRoot(m, userId, secret)));
  return { name: rootUserName(members[0] as InstanceItem), password: secret };
}
