import type { GaleraMembership } from './engines/galera.ts';
import type { EngineManager } from './engines/manager.ts';

// Galera's guest calls (lib/clusters/galera.ts): bootstrap, join, leave and status. The SST
// password arrives sealed with this guest's key (unsealed by the guest before it gets here).
// Each is safe to repeat: workflows retry their steps.

export const GALERA_OPERATIONS = new Set([
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
  // gcomm's group names are at most 32 characters (longer ones fail every handshake).
  if ((name as string).length > 32) throw badRequest('a Galera cluster name has at most 32 characters');
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

export async function runGaleraOperation(
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
