import type { EngineManager } from './engines/manager.ts';
import { GALERA_OPERATIONS, runGaleraOperation } from './galera-operations.ts';

// Trove's cluster guest calls (TROVE_API.md §10: redis's cluster_meet and cluster_addslots),
// and cluster_info, which the control plane reads until every member sees the whole cluster.
// Grow and shrink add the cluster account (cluster_account), the engine password new members
// adopt (cluster_password, answered sealed with this guest's key) and the background migration
// (cluster_rebalance); a replica follows its master with cluster_replicate. Each is safe to repeat: workflows retry their steps.

export const CLUSTER_OPERATIONS = new Set([
  'cluster_meet',
  'cluster_addslots',
  'cluster_info',
  'cluster_account',
  'cluster_password',
  'cluster_rebalance',
  'cluster_replicate',
  // Galera's (agent/galera-operations.ts).
  ...GALERA_OPERATIONS,
]);

function secret(value: unknown, name: string): string {
  if (typeof value !== 'string' || !value)
    throw Object.assign(new Error(`${name} is required`), { name: 'BadRequest' });
  return value;
}

function endpoints(value: unknown): { host: string; port: number }[] {
  if (!Array.isArray(value)) return [];
  return value.map((e) => ({
    host: String((e as { host?: unknown }).host),
    port: Number((e as { port?: unknown }).port),
  }));
}

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
  seal: (payload: unknown) => string,
): Promise<unknown> {
  if (GALERA_OPERATIONS.has(method)) return runGaleraOperation(engine, manager, method, args);
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
    case 'cluster_account':
      if (!cluster.account) break;
      await cluster.account(secret(args.password, 'password'));
      return null;
    case 'cluster_password': {
      if (!cluster.password) break;
      // Never in the clear in the answer (the operations table keeps answers for an hour).
      return { sealed: seal({ password: await cluster.password() }) };
    }
    case 'cluster_replicate':
      if (!cluster.replicate) break;
      await cluster.replicate(String(args.host), Number(args.port));
      return null;
    case 'cluster_rebalance':
      if (!cluster.rebalance) break;
      return cluster.rebalance({
        mode: args.mode === 'shrink' ? 'shrink' : 'grow',
        leaving: endpoints(args.leaving),
        password: secret(args.password, 'password'),
      });
    default:
      throw Object.assign(new Error(`unknown operation ${method}`), { name: 'BadRequest' });
  }
  throw Object.assign(new Error(`${method} is not supported for ${manager}.`), { name: 'NotImplemented' });
}
