import { BadRequest } from '../errors.ts';
import type { InstanceItem } from '../instances/model.ts';

// Replicas in a cluster (Redis Cluster's replica per master), asked for as troveclient's
// `--instance ...,type=replica,related_to=<master>` sends them: each new member's `type` and
// `related_to`, resolved against the new members and, on a grow, the existing ones. Pure.

/** What one asked-for member says of its role. */
export interface RoleRequest {
  type?: string | string[];
  related_to?: string;
}

type Member = Pick<InstanceItem, 'id' | 'name' | 'cluster_type' | 'cluster_master_id'>;

export const isReplica = (m: Pick<InstanceItem, 'cluster_type'>): boolean => m.cluster_type === 'replica';

/** The one type a member asks for: `member` (the default) or `replica`. */
function typeOf(request: RoleRequest): 'member' | 'replica' {
  const types = [request.type ?? []].flat();
  const known = types.filter((t) => t === 'member' || t === 'replica');
  const unknown = types.find((t) => t !== 'member' && t !== 'replica');
  if (unknown !== undefined)
    throw new BadRequest(`Instance type '${unknown}' is not supported for this cluster.`);
  if (new Set(known).size > 1) throw new BadRequest("An instance cannot be both a 'member' and a 'replica'.");
  return known[0] === 'replica' ? 'replica' : 'member';
}

/**
 * The role of each of `added` (in the order of `requests`). A replica's `related_to` names its
 * master, by name or id, among `existing` and `added` (troveclient sends it on grow); one without
 * it (troveclient's create sends only `type`) follows the first master with no replica yet, new
 * masters first, as `redis-cli --cluster create --cluster-replicas 1` pairs them. A master is a
 * member, not a replica, with one replica at most. Returns the added members with `cluster_type`
 * and `cluster_master_id` set where they are replicas.
 */
export function assignRoles<T extends Member>(
  added: T[],
  requests: RoleRequest[],
  existing: Member[],
  { replicasSupported, manager }: { replicasSupported: boolean; manager: string },
): T[] {
  const types = added.map((_, i) => typeOf(requests[i] ?? {}));
  if (types.includes('replica') && !replicasSupported)
    throw new BadRequest(`Replicas are not supported for ${manager} clusters.`);
  const newReplicas = new Set(added.filter((_, i) => types[i] === 'replica').map((m) => m.id));
  const isMaster = (m: Member) => !isReplica(m) && !newReplicas.has(m.id);
  const replicaOf = new Map<string, string>();
  for (const m of existing) if (isReplica(m) && m.cluster_master_id) replicaOf.set(m.cluster_master_id, m.id);
  const masterOf = new Map<string, Member>();
  const follow = (replica: T, master: Member) => {
    replicaOf.set(master.id, replica.id);
    masterOf.set(replica.id, master);
  };
  // Named masters first: a replica paired by order must not take a master another one names.
  for (const [i, member] of added.entries()) {
    const named = requests[i]?.related_to;
    if (types[i] !== 'replica' || named === undefined) continue;
    const matches = [...existing, ...added].filter((m) => m.id === named || m.name === named);
    if (matches.length !== 1)
      throw new BadRequest(
        matches.length
          ? `'related_to' ${named} names more than one instance of the cluster.`
          : `'related_to' ${named} names no instance of the cluster.`,
      );
    const master = matches[0] as Member;
    if (!isMaster(master))
      throw new BadRequest(`'related_to' ${named} names a replica: a replica follows a master.`);
    if (replicaOf.has(master.id))
      throw new BadRequest(`Instance '${master.name}' already has a replica: each master takes one.`);
    follow(member, master);
  }
  for (const [i, member] of added.entries()) {
    if (types[i] !== 'replica' || masterOf.has(member.id)) continue;
    const master = [...added, ...existing].find((m) => isMaster(m) && !replicaOf.has(m.id));
    if (!master)
      throw new BadRequest(
        `Replica '${member.name}' has no master without a replica to follow: each master takes one.`,
      );
    follow(member, master);
  }
  return added.map((member) => {
    const master = masterOf.get(member.id);
    return master ? { ...member, cluster_type: 'replica' as const, cluster_master_id: master.id } : member;
  });
}

/** How many of `members` are masters (not replicas): the count Redis Cluster's slots spread over. */
export const masterCount = (members: Pick<InstanceItem, 'cluster_type'>[]): number =>
  members.filter((m) => !isReplica(m)).length;

/**
 * A shrink may not leave a replica behind without its master: a master leaves together with its
 * replica (both listed) or after it. Removing a master alone would leave its replica following
 * nothing — or, once Redis Cluster made it master of no slots, a member that is no one's replica —
 * and removing the replica without being asked would delete an instance the user did not name.
 */
export function replicaLeftBehind(members: Member[], leaving: string[]): string | undefined {
  for (const master of members.filter((m) => leaving.includes(m.id) && !isReplica(m))) {
    const replica = members.find((m) => isReplica(m) && m.cluster_master_id === master.id);
    if (replica && !leaving.includes(replica.id))
      return `Instance '${master.id}' cannot be removed while its replica '${replica.id}' stays in the cluster: remove them together, or the replica first.`;
  }
  return undefined;
}
