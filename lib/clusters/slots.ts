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
}

/**
 * Why a cluster of `members` nodes is not formed yet, or undefined when every node sees the whole
 * cluster: state ok, all 16384 slots assigned, every member known.
 */
export function notFormed(infos: { id: string; info: ClusterInfo }[], members: number): string | undefined {
  for (const { id, info } of infos) {
    if (info.cluster_state !== 'ok') return `member ${id} says cluster_state:${info.cluster_state}`;
    if (info.cluster_slots_assigned !== SLOT_COUNT)
      return `member ${id} sees ${info.cluster_slots_assigned} of ${SLOT_COUNT} slots assigned`;
    if (info.cluster_known_nodes !== members)
      return `member ${id} knows ${info.cluster_known_nodes} of ${members} nodes`;
  }
  return undefined;
}
