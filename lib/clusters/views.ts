import { config } from '../config.ts';
import type { InstanceItem } from '../instances/model.ts';
import { deriveStatus } from '../instances/status.ts';
import { resourceLinks, type ViewContext } from '../instances/views.ts';
import type { ClusterItem } from './model.ts';
import { isReplica } from './replicas.ts';
import type { ClusterMemberView, ClusterView } from './schemas.ts';
import { taskView } from './tasks.ts';

/** Unlike the instance view's strings, the cluster view's addresses are objects (Trove's). */
function ipsOf(member: InstanceItem) {
  return (member.addresses ?? []).map((a) => ({ address: a.address, type: a.type }));
}

function memberView(member: InstanceItem, ctx: ViewContext, withServer: boolean): ClusterMemberView {
  const view: ClusterMemberView = {
    id: member.id,
    name: member.name,
    // Masters (and Galera's nodes) are `member`s, as Trove's strategies list them; a Redis
    // Cluster replica shows the type it was asked for.
    type: isReplica(member) ? 'replica' : 'member',
    links: resourceLinks(ctx.base, member.project_id, 'instances', member.id),
  };
  if (!withServer) return view;
  view.status = deriveStatus(member, ctx.now ?? new Date(), config.heartbeatExpirySeconds).status;
  view.flavor = {
    id: member.flavor_id,
    links: resourceLinks(ctx.base, member.project_id, 'flavors', member.flavor_id),
  };
  view.volume = { size: member.volume_size };
  view.ip = ipsOf(member);
  return view;
}

/**
 * Trove's ClusterView. `members` with their server data (show): each member's status, flavor,
 * volume and addresses, and the top-level `ip` of every member. Lists, and the create and
 * action replies, are built without server data, as Trove's (`load_servers=False`).
 */
export function clusterView(
  cluster: ClusterItem,
  members: InstanceItem[],
  ctx: ViewContext,
  { withServers = false }: { withServers?: boolean } = {},
): ClusterView {
  const byId = new Map(members.map((m) => [m.id, m]));
  const ordered = cluster.instance_ids
    .map((id) => byId.get(id))
    .filter((m): m is InstanceItem => m !== undefined);
  const view: ClusterView = {
    id: cluster.id,
    name: cluster.name,
    task: taskView(cluster.task),
    created: cluster.created,
    updated: cluster.updated,
    links: resourceLinks(ctx.base, cluster.project_id, 'clusters', cluster.id),
    datastore: { type: cluster.datastore.type, version: cluster.datastore.version },
    instances: ordered.map((m) => memberView(m, ctx, withServers)),
  };
  if (withServers) {
    // The cluster's address leads to a healthy member: those ACTIVE first, the others after
    // them (a Galera client, or a Redis Cluster client's seed, takes the first that answers).
    const now = ctx.now ?? new Date();
    const active = (m: InstanceItem) =>
      deriveStatus(m, now, config.heartbeatExpirySeconds).status === 'ACTIVE' ? 0 : 1;
    const ips = [...ordered].sort((a, b) => active(a) - active(b)).flatMap(ipsOf);
    if (ips.length) view.ip = ips;
  }
  if (cluster.locality) view.locality = cluster.locality;
  if (cluster.configuration_id) view.configuration = cluster.configuration_id;
  return view;
}
