import { config } from '../config.ts';
import type { InstanceItem } from '../instances/model.ts';
import { deriveStatus } from '../instances/status.ts';
import { galeraStrategy } from './galera.ts';
import { ClusterPending, redisStrategy } from './redis.ts';

/**
 * What differs between the engines Troveless clusters (Trove's cluster strategies,
 * trove/common/strategies/cluster/): the rest — routes, quotas, members as instances, the
 * workflows' shape, the cluster task — is one code path. Each method is a workflow step's engine
 * part and must be safe to repeat: workflows retry their steps.
 */
export interface ClusterStrategy {
  /** The fewest members a cluster starts with (and may shrink to). */
  minMembers: number;
  /** Whether members may be replicas of other members (Redis Cluster's replica per master). */
  replicas?: boolean;
  /** Ports beyond the engine's own that members open to each other (a member's, by its port). */
  peerPorts(member: InstanceItem): number[];
  /** Makes one cluster of freshly built members (create). */
  form(members: InstanceItem[]): Promise<void>;
  /** Throws ClusterPending until every member sees the whole, healthy cluster. */
  check(members: InstanceItem[]): Promise<void>;
  /**
   * Grow: brings freshly built `added` members into the cluster of `existing` (Redis: meet, then
   * slots rebalanced with their keys migrating live; Galera: join by SST). `check` with every
   * member then says when it is done. Absent: the engine cannot grow (Trove's 400).
   */
  addMembers?(existing: InstanceItem[], added: InstanceItem[]): Promise<void>;
  /**
   * Shrink: takes `leaving` out of the cluster before they are deleted (Redis: their slots and
   * keys migrated to `remaining` first, then forgotten; Galera: a clean leave). `check` with
   * `remaining` then says when it is done. Absent: the engine cannot shrink (Trove's 400).
   */
  removeMembers?(remaining: InstanceItem[], leaving: InstanceItem[]): Promise<void>;
}

// Trove's mysql manager runs MariaDB here (lib/catalog/seed-data.ts): both cluster with Galera.
// Looked up when asked, not at load: the strategies' modules import this one's importers.
const strategies = (): Record<string, ClusterStrategy> => ({
  redis: redisStrategy,
  mysql: galeraStrategy,
  mariadb: galeraStrategy,
});

/** The strategy of a datastore manager, or undefined where Troveless does not cluster it. */
export function strategyFor(manager: string): ClusterStrategy | undefined {
  return strategies()[manager];
}

/** The strategy of a cluster that exists (its manager was checked at create). */
export function strategyOf(cluster: { datastore: { manager: string } }): ClusterStrategy {
  const strategy = strategyFor(cluster.datastore.manager);
  if (!strategy) throw new Error(`no cluster strategy for ${cluster.datastore.manager}`);
  return strategy;
}

/**
 * The strategy's check, and then each member's own engine reported up by its guest (as the
 * database and root routes require: Trove's 422 otherwise). A member restarted into the cluster
 * (Galera's bootstrap and joins) is Synced before its next heartbeat says so: a task back to NONE
 * must mean every route works on every member.
 */
export async function checkServing(cluster: { datastore: { manager: string } }, members: InstanceItem[]) {
  await strategyOf(cluster).check(members);
  const now = new Date();
  const quiet = members.find(
    (m) =>
      !['running', 'healthy'].includes(deriveStatus(m, now, config.heartbeatExpirySeconds).service_status),
  );
  if (quiet) throw new ClusterPending(`member ${quiet.id} has not reported its engine up since it joined`);
}
