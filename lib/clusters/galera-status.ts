// What the control plane reads of a Galera member (its galera_status guest call) and its verdict
// on the whole cluster (the strategy's check). Pure.

/** A member's wsrep status, as the control plane reads it (galera_status). */
export interface GaleraStatus {
  /** wsrep_cluster_size: members in this member's component. */
  cluster_size: number;
  /** wsrep_cluster_status: Primary, Non-Primary or Disconnected. */
  cluster_status: string;
  /** wsrep_local_state_comment: Synced, Joining, Donor/Desynced, Joined, Initialized ... */
  local_state: string;
  /** wsrep_ready: the member takes queries. */
  ready: boolean;
}

/**
 * Why the cluster of `members` is not whole and healthy yet, or undefined when every member is in
 * one primary component of all of them, Synced and taking queries.
 */
export function notSynced(
  statuses: { id: string; status: GaleraStatus }[],
  members: number,
): string | undefined {
  for (const { id, status } of statuses) {
    if (status.cluster_status !== 'Primary') return `member ${id} is in a ${status.cluster_status} component`;
    if (status.cluster_size !== members)
      return `member ${id} sees ${status.cluster_size} of ${members} members`;
    if (status.local_state !== 'Synced') return `member ${id} is ${status.local_state}`;
    if (!status.ready) return `member ${id} does not take queries yet`;
  }
  return undefined;
}
