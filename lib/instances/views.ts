import { config } from '../config.ts';
import type { InstanceItem } from './model.ts';
import { replicationView } from './replication-view.ts';
import type { InstanceDetailView, InstanceView } from './schemas.ts';
import { deriveStatus, lastHeard } from './status.ts';

/** Trove's two links per resource: a versioned self link and an unversioned bookmark. */
export function resourceLinks(base: string, projectId: string, collection: string, id: string) {
  return [
    { rel: 'self', href: `${base}/v1.0/${projectId}/${collection}/${id}` },
    { rel: 'bookmark', href: `${base}/${collection}/${id}` },
  ];
}

export interface ViewContext {
  base: string;
  isAdmin: boolean;
  now?: Date;
}

/** Trove's InstanceView: what lists show for each instance. */
export function instanceSummary(item: InstanceItem, ctx: ViewContext): InstanceView {
  const derived = deriveStatus(item, ctx.now ?? new Date(), config.heartbeatExpirySeconds);
  const view: InstanceView = {
    id: item.id,
    name: item.name,
    status: derived.status,
    operating_status: derived.operating_status,
    links: resourceLinks(ctx.base, item.project_id, 'instances', item.id),
    flavor: {
      id: item.flavor_id,
      links: resourceLinks(ctx.base, item.project_id, 'flavors', item.flavor_id),
    },
    datastore: { type: item.datastore.type, version: item.datastore.version },
    region: item.region,
    access: item.access ?? {},
    volume: { size: item.volume_size },
  };
  const addresses = item.addresses ?? [];
  if (addresses.length) {
    view.ip = addresses.map((a) => a.address);
    // Each address also says its port when the engine does not listen on its default one.
    view.addresses = addresses.map((a) => ({
      address: a.address,
      type: a.type,
      ...(a.port ? { port: a.port } : {}),
    }));
  }
  if (item.locality) view.locality = item.locality;
  // Trove's replica_of on a replica and replicas on its source, each a ref with its links.
  if (item.replica_of_id) {
    view.replica_of = {
      id: item.replica_of_id,
      links: resourceLinks(ctx.base, item.project_id, 'instances', item.replica_of_id),
    };
  }
  if (item.replica_ids?.length) {
    view.replicas = item.replica_ids.map((id) => ({
      id,
      links: resourceLinks(ctx.base, item.project_id, 'instances', id),
    }));
  }
  if (ctx.isAdmin) view.tenant_id = item.project_id;
  return view;
}

/** Trove's InstanceDetailView: show, detail lists and the create reply. */
export function instanceDetail(
  item: InstanceItem,
  ctx: ViewContext,
  extra: { password?: string } = {},
): InstanceDetailView {
  const summary = instanceSummary(item, ctx);
  const derived = deriveStatus(item, ctx.now ?? new Date(), config.heartbeatExpirySeconds);
  const view: InstanceDetailView = {
    ...summary,
    datastore: { ...summary.datastore, version_number: item.datastore.version_number },
    created: item.created,
    updated: item.updated,
    service_status_updated: lastHeard(item),
  };
  const replicationFault = item.replication?.error
    ? { message: item.replication.error, created: lastHeard(item) }
    : undefined;
  if (!item.fault && replicationFault && derived.operating_status === 'ERROR') view.fault = replicationFault;
  if (item.fault) {
    view.fault = {
      message: item.fault.message,
      created: item.fault.created,
      ...(ctx.isAdmin && item.fault.details ? { details: item.fault.details } : {}),
    };
  }
  if (derived.status === 'ACTIVE' && item.volume_used_bytes !== undefined) {
    const used = item.volume_used_bytes / 1024 ** 3;
    view.volume = {
      size: item.volume_size,
      used: Math.round(used * 100) / 100,
      used_percent: Math.round((used / item.volume_size) * 10000) / 100,
    };
  }
  if (extra.password) view.password = extra.password;
  if (item.cluster_id) view.cluster_id = item.cluster_id;
  // Beyond Trove: how replication stands, as the member's guest last reported it.
  if (
    item.replica_of_id ||
    item.replica_ids?.length ||
    item.replication_mode ||
    item.replication_failover === 'automatic' ||
    item.writer
  ) {
    view.replication = replicationView(item);
  }
  if (ctx.isAdmin) {
    if (item.server_id) view.server_id = item.server_id;
    view.encrypted_rpc_messaging = true;
  }
  return view;
}
