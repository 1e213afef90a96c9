// Redis Cluster's key space: 16384 hash slots, each served by exactly one master.

export const SLOT_COUNT = 16384;

/** An inclusive range of slots, as CLUSTER ADDSLOTSRANGE takes them. */
export type SlotRange = [number, number];

/**
 * The slots each of `masters` serves in a new cluster: contiguous ranges as even as can be (the
 * first `16384 mod n` masters take one slot more), as redis-cli --cluster create spreads them.
 */
export function planSlots(masters: number): SlotRange[] {
  if (!Number.isInteger(masters) || masters < 1)
    throw new Error(`cannot spread slots over ${masters} masters`);
  const base = Math.floor(SLOT_COUNT / masters);
  const extra = SLOT_COUNT % masters;
  const ranges: SlotRange[] = [];
  let start = 0;
  for (let i = 0; i < masters; i++) {
    const size = base + (i < extra ? 1 : 0);
    ranges.push([start, start + size - 1]);
    start += size;
  }
  return ranges;
}

/** What CLUSTER INFO says of one node (the fields the control plane acts on). */
export interface ClusterInfo {
  cluster_state: string;
  cluster_slots_assigned: number;
  cluster_known_nodes: number;
  cluster_size: number;
  /** The slots this node serves, and whether one of them is being moved in or out. */
  slots?: number;
  migrating?: boolean;
  /** What the node is now (a failover swaps a master and its replica), and a replica's link. */
  role?: 'master' | 'replica';
  master_link_status?: string;
  /** A grow's or shrink's migration run from this node (agent/engines/redis-rebalance.ts). */
  rebalance?: { state: 'running' | 'failed' | 'done'; error?: string };
}

/**
 * Whether each master serves its even share of the slots, as a grow or shrink leaves them: the
 * most and the fewest differ by one at most.
 */
export function slotsBalanced(counts: number[]): boolean {
  return counts.length === 0 || Math.max(...counts) - Math.min(...counts) <= 1;
}

/**
 * Why a cluster of `members` nodes, `replicas` of them replicas, is not formed yet, or undefined
 * when every node sees the whole cluster: state ok, all 16384 slots assigned, every member known,
 * every replica following a master with its link up, the slots spread evenly over the masters.
 * Roles are read from the nodes, not from how they were built: after a failover the replica is
 * the master, and its old master, back, its replica.
 */
export function notFormed(
  infos: { id: string; info: ClusterInfo }[],
  members: number,
  replicas = 0,
): string | undefined {
  for (const { id, info } of infos) {
    if (info.cluster_state !== 'ok') return `member ${id} says cluster_state:${info.cluster_state}`;
    if (info.cluster_slots_assigned !== SLOT_COUNT)
      return `member ${id} sees ${info.cluster_slots_assigned} of ${SLOT_COUNT} slots assigned`;
    if (info.cluster_known_nodes !== members)
      return `member ${id} knows ${info.cluster_known_nodes} of ${members} nodes`;
    if (info.rebalance?.state === 'running') return `member ${id} is moving slots`;
    if (info.migrating) return `a slot of member ${id} is being moved`;
    if (info.role === 'replica' && info.master_link_status !== 'up')
      return `replica ${id}'s link to its master is ${info.master_link_status ?? 'not up'}`;
  }
  const following = infos.filter((i) => i.info.role === 'replica').length;
  if (following < replicas) return `${following} of ${replicas} replicas follow their masters`;
  const counts = infos
    .filter((i) => i.info.role !== 'replica')
    .map((i) => i.info.slots)
    .filter((n): n is number => n !== undefined);
  if (!slotsBalanced(counts))
    return `the slots are not spread evenly yet (${Math.min(...counts)} to ${Math.max(...counts)} a member)`;
  return undefined;
}

/**
 * A migration that will not finish by waiting: one that failed on a member, or a slot left half
 * moved with no migration running anywhere (its guest restarted mid-move).
 */
export function migrationFailure(infos: { id: string; info: ClusterInfo }[]): string | undefined {
  const failed = infos.find((i) => i.info.rebalance?.state === 'failed');
  if (failed)
    return `moving slots from member ${failed.id} failed: ${failed.info.rebalance?.error ?? 'unknown error'}`;
  const running = infos.some((i) => i.info.rebalance?.state === 'running');
  const stuck = infos.find((i) => i.info.migrating);
  if (stuck && !running) return `a slot of member ${stuck.id} was left half moved, and nothing is moving it`;
  return undefined;
}
