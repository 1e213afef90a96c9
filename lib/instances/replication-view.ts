import { modeOf } from '../replication/mode.ts';
import type { InstanceItem } from './model.ts';

/**
 * The `replication` extension field: the role the control plane knows (which is the truth for
 * clients) with what the guest last reported of its engine (lag, position, error), if anything.
 */
export function replicationView(item: InstanceItem) {
  const role: 'source' | 'replica' = item.replica_of_id ? 'replica' : 'source';
  const reported = item.replication?.role === role ? item.replication : undefined;
  return {
    ...(reported ?? {}),
    role,
    mode: modeOf(item),
    failover: item.replication_failover ?? 'manual',
    ...(item.replication_term ? { term: item.replication_term } : {}),
    ...(item.replication_events?.length ? { events: item.replication_events.map((e) => ({ ...e })) } : {}),
    ...(item.writer ? { writer: { address: item.writer.address, port: item.writer.port } } : {}),
  };
}
