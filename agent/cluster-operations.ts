import type { EngineManager } from './engines/manager.ts';

// Trove's cluster guest calls (TROVE_API.md §10: redis's cluster_meet and cluster_addslots),
// and cluster_info, which the control plane reads until every member sees the whole cluster.
// Each is safe to repeat: workflows retry their steps.

export const CLUSTER_OPERATIONS = new Set(['cluster_meet', 'cluster_addslots', 'cluster_info']);

function rangesOf(value: unknown): [number, number][] {
  if (!Array.isArray(value)) throw Object.assign(new Error('ranges must be a list'), { name: 'BadRequest' });
  return value.map((r) => {
    const [start, end] = Array.isArray(r) ? r.map(Number) : [];
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      (start as number) < 0 ||
      (end as number) > 16383 ||
      (start as number) > (end as number)
    )
      throw Object.assign(new Error(`not a slot range: ${JSON.stringify(r)}`), { name: 'BadRequest' });
    return [start, end] as [number, number];
  });
}

export async function runClusterOperation(
  engine: EngineManager,
  manager: string,
  method: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  const cluster = engine.cluster;
  if (!cluster)
    throw Object.assign(new Error(`Clusters are not supported for ${manager}.`), { name: 'NotImplemented' });
  switch (method) {
    case 'cluster_meet':
      await cluster.meet(String(args.host), Number(args.port));
      return null;
    case 'cluster_addslots':
      await cluster.addSlots(rangesOf(args.ranges));
      return null;
    case 'cluster_info':
      return cluster.info();
    default:
      throw Object.assign(new Error(`unknown operation ${method}`), { name: 'BadRequest' });
  }
}
