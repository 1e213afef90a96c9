import type { GaleraMembership } from './engines/galera.ts';
import type { EngineManager } from './engines/manager.ts';

// Trove's cluster guest calls (TROVE_API.md §10: redis's cluster_meet and cluster_addslots),
// and cluster_info, which the control plane reads until every member sees the whole cluster;
// Galera's bootstrap, join, leave and status likewise. Each is safe to repeat: workflows retry
// their steps.

export const CLUSTER_OPERATIONS = new Set([
  'cluster_meet',
  'cluster_addslots',
  'cluster_info',
  'galera_bootstrap',
  'galera_join',
  'galera_leave',
  'galera_status',
]);

const badRequest = (message: string) => Object.assign(new Error(message), { name: 'BadRequest' });

/** The membership a galera_bootstrap or galera_join names: the cluster, this member, all members. */
export function membershipOf(args: Record<string, unknown>): GaleraMembership {
  const { name, self, members } = args as { name?: unknown; self?: unknown; members?: unknown };
  const safe = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v);
  if (!safe(name) || !safe(self)) throw badRequest('a Galera membership needs a name and an address');
  if (!Array.isArray(members) || members.length < 1) throw badRequest('a Galera membership needs members');
  const list = members.map((m) => {
    const { host, port } = (m ?? {}) as { host?: unknown; port?: unknown };
    if (!safe(host) || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
      throw badRequest(`not a member address: ${JSON.stringify(m)}`);
    return { host: host as string, port: port as number };
  });
  return { name: name as string, self: self as string, members: list };
}

function passwordOf(args: Record<string, unknown>): string {
  const password = args.sst_password;
  // It lands in a config file line: nothing that could end the line or start a comment.
  if (typeof password !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(password))
    throw badRequest('the SST password is missing or malformed');
  return password;
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
): Promise<unknown> {
  if (method.startsWith('galera_')) return runGaleraOperation(engine, manager, method, args);
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

async function runGaleraOperation(
  engine: EngineManager,
  manager: string,
  method: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  const galera = engine.galera;
  if (!galera)
    throw Object.assign(new Error(`Galera is not supported for ${manager}.`), { name: 'NotImplemented' });
  switch (method) {
    case 'galera_bootstrap':
      await galera.bootstrap(membershipOf(args), passwordOf(args));
      return null;
    case 'galera_join':
      await galera.join(membershipOf(args), passwordOf(args));
      return null;
    case 'galera_leave':
      await galera.leave();
      return null;
    case 'galera_status':
      return galera.status();
    default:
      throw badRequest(`unknown operation ${method}`);
  }
}
