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
 * The role of each of `added` (in the order of `requests`): a replica names its master in
 * `related_to`, by name or id, among `existing` and `added`; the master must be a member (not a
 * replica) with no other replica, as Redis Cluster's one replica per master. Returns the added
 * members with `cluster_type` and `cluster_master_id` set where they are replicas.
 */
export function assignRoles<T extends Member>(
  added: T[],
  requests: RoleRequest[],
  existing: Member[],
  { replicasSupported, manager }: { replicasSupported: boolean; manager: string },
): T[] {
  const all: Member[] = [...existing, ...added];
  const replicaOf = new Map<string, string>();
  for (const m of existing) if (isReplica(m) && m.cluster_master_id) replicaOf.set(m.cluster_master_id, m.id);
  const assigned = added.map((member, i) => {
    const request = requests[i] ?? {};
    if (typeOf(request) === 'member') return member;
    if (!replicasSupported) throw new BadRequest(`Replicas are not supported for ${manager} clusters.`);
    if (!request.related_to)
      throw new BadRequest(`Replica '${member.name}' must name its master in 'related_to'.`);
    const masters = all.filter((m) => m.id === request.related_to || m.name === request.related_to);
    if (masters.length !== 1)
      throw new BadRequest(
        masters.length
          ? `'related_to' ${request.related_to} names more than one instance of the cluster.`
          : `'related_to' ${request.related_to} names no instance of the cluster.`,
      );
    return { member, request, master: masters[0] as Member };
  });
  // Masters are known only once every added member's type is: a replica may name a later one.
  const replicas = new Set(assigned.filter((a) => !('id' in a)).map((a) => (a as { member: T }).member.id));
  return assigned.map((a) => {
    if ('id' in a) return a;
    const { member, request, master } = a;
    if (isReplica(master) || replicas.has(master.id))
      throw new BadRequest(`'related_to' ${request.related_to} names a replica: a replica follows a master.`);
    const taken = replicaOf.get(master.id);
    if (taken !== undefined)
      throw new BadRequest(`Instance '${master.name}' already has a replica: each master takes one.`);
    replicaOf.set(master.id, member.id);
    return { ...member, cluster_type: 'replica' as const, cluster_master_id: master.id };
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
