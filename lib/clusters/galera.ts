import { randomBytes } from 'node:crypto';
import { config } from '../config.ts';
import { callGuest } from '../guest/calls.ts';
import type { InstanceItem } from '../instances/model.ts';
import { endpointOf } from '../replication/members.ts';
import { type GaleraStatus, notSynced } from './galera-status.ts';
import { ClusterPending } from './redis.ts';
import type { ClusterStrategy } from './strategy.ts';

// MariaDB Galera through the members' guests (Trove's galera_common strategy): the first member
// bootstraps the cluster, the others join it one at a time by SST (mariadb-backup), each from
// whichever member is Synced. Every call is safe to repeat, so a retried step changes nothing
// twice.

/** Bootstrap restarts the engine (a join only starts it; check() follows it). */
const FORM_CALL_SECONDS = 90;

/** Galera's ports above the engine's (agent/engines/galera.ts galeraPorts: 4567, 4568, 4444 for 3306). */
export function galeraPeerPorts(port: number): number[] {
  return [port + 1261, port + 1262, port + 1138];
}

/** What each member is told: the cluster's name (from its id), its own address, every member's. */
function membershipFor(member: InstanceItem, members: InstanceItem[]) {
  return {
    // Galera takes at most 32 characters: the cluster id's 32 hex digits.
    name: (member.cluster_id ?? 'cluster').replaceAll('-', '').slice(0, 32),
    self: endpointOf(member).host,
    members: members.map(endpointOf),
  };
}

/**
 * A new password for the SST account each time the membership is written (it travels sealed
 * with each guest's key and is kept nowhere else: a retry or a grow sets a new one everywhere).
 */
const newSstPassword = () => randomBytes(24).toString('base64url');

function call(member: InstanceItem, method: string, args: Record<string, unknown>, secret?: object) {
  return callGuest(member, method, args, {
    timeoutSeconds: secret ? FORM_CALL_SECONDS : config.callLowTimeoutSeconds,
    ...(secret ? { secret: secret as Record<string, unknown> } : {}),
  });
}

export async function formGalera(members: InstanceItem[]): Promise<void> {
  const [first, ...others] = members;
  if (!first) throw new Error('a cluster without members cannot be formed');
  const sst_password = newSstPassword();
  await call(first, 'galera_bootstrap', membershipFor(first, members), { sst_password });
  // Each join returns once the member is starting (its SST can take long): check() follows them.
  // Joiners waiting for a donor retry by themselves; a repeated join changes nothing.
  for (const member of others)
    await call(member, 'galera_join', membershipFor(member, members), { sst_password });
}

async function statuses(members: InstanceItem[]) {
  const out: { id: string; status: GaleraStatus }[] = [];
  for (const member of members) {
    const status = await call(member, 'galera_status', {}).catch((err: Error) => {
      // A member restarting into its state transfer does not answer yet: asked again.
      throw new ClusterPending(`member ${member.id} does not say its wsrep status yet: ${err.message}`);
    });
    out.push({ id: member.id, status: status as GaleraStatus });
  }
  return out;
}

/** Pending until every member is Synced in one primary component of them all. */
export async function checkGalera(members: InstanceItem[]): Promise<void> {
  const reason = notSynced(await statuses(members), members.length);
  if (reason) throw new ClusterPending(`The cluster is not synced yet: ${reason}.`);
}

/** Grow: the members there are told the new membership, then each new one joins by SST. */
export async function addGaleraMembers(existing: InstanceItem[], added: InstanceItem[]): Promise<void> {
  const all = [...existing, ...added];
  const sst_password = newSstPassword();
  for (const member of all) await call(member, 'galera_join', membershipFor(member, all), { sst_password });
}

/**
 * Shrink: never the last Synced member, and never below the strategy's minimum. The members that
 * stay learn the membership without the leaving ones; each leaving one stops cleanly (its peers
 * see it go and the component stays primary).
 */
export async function removeGaleraMembers(remaining: InstanceItem[], leaving: InstanceItem[]): Promise<void> {
  if (remaining.length < galeraStrategy.minMembers)
    throw new Error(`A Galera cluster keeps at least ${galeraStrategy.minMembers} members.`);
  const synced = (await statuses(remaining)).filter((s) => s.status.local_state === 'Synced');
  if (!synced.length) throw new ClusterPending('No member that stays is Synced: none may leave yet.');
  const sst_password = newSstPassword();
  for (const member of remaining)
    await call(member, 'galera_join', membershipFor(member, remaining), { sst_password });
  for (const member of leaving) await call(member, 'galera_leave', {});
}

/** MariaDB Galera: every member a writer, Galera's ports open to the other members only. */
export const galeraStrategy: ClusterStrategy = {
  minMembers: 3,
  peerPorts: (member) => galeraPeerPorts(member.addresses?.[0]?.port ?? 3306),
  form: formGalera,
  check: checkGalera,
  addMembers: addGaleraMembers,
  removeMembers: removeGaleraMembers,
};
