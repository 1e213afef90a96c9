import { createHmac } from 'node:crypto';
import { config } from '../config.ts';
import { callGuest } from '../guest/calls.ts';
import { unwrapKey } from '../guest/keys.ts';
import { decryptWith } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';
import { endpointOf } from '../replication/members.ts';
import { isReplica } from './replicas.ts';
import { type ClusterInfo, migrationFailure, notFormed, planSlots } from './slots.ts';
import type { ClusterStrategy } from './strategy.ts';

// Redis Cluster through the members' guests (Trove's redis strategy: cluster_meet, then the
// slots): each call is safe to repeat, so a retried step changes nothing twice.

const call = (member: InstanceItem, method: string, args: Record<string, unknown> = {}) =>
  callGuest(member, method, args, { timeoutSeconds: config.callLowTimeoutSeconds });

/** Redis Cluster's bus listens 10000 above the client port (Redis's default cluster-port). */
export const CLUSTER_BUS_OFFSET = 10000;

/** Thrown while the members do not all see one whole cluster yet; the workflow asks again. */
export class ClusterPending extends Error {
  override name = 'Troveless.ClusterPending';
}

/**
 * The first member meets every other (gossip then introduces them to each other), each master
 * gets its even share of the 16384 slots, in member order, and each replica follows its master.
 */
export async function formRedisCluster(members: InstanceItem[]): Promise<void> {
  const [first, ...others] = members;
  if (!first) throw new Error('a cluster without members cannot be formed');
  for (const other of others) {
    const { host, port } = endpointOf(other);
    await call(first, 'cluster_meet', { host, port });
  }
  const masters = members.filter((m) => !isReplica(m));
  const plan = planSlots(masters.length);
  for (const [i, master] of masters.entries()) await call(master, 'cluster_addslots', { ranges: [plan[i]] });
  const replicas = members.filter(isReplica);
  if (!replicas.length) return;
  // A replica's link logs in to its master as the cluster account (every member has it: after a
  // failover the old master, back, follows its replica).
  await setAccount(members, await clusterAccount(first));
  await untilAllKnown(members);
  await followMasters(replicas, members);
}

/** Each of `replicas` follows its master (CLUSTER REPLICATE; a repeat changes nothing). */
async function followMasters(replicas: InstanceItem[], members: InstanceItem[]): Promise<void> {
  for (const replica of replicas) {
    const master = members.find((m) => m.id === replica.cluster_master_id);
    if (!master) throw new Error(`the master of replica ${replica.id} is not a member of its cluster`);
    await call(replica, 'cluster_replicate', endpointOf(master));
  }
}

/** A grow's or shrink's migration failed on a member: waiting longer will not finish it. */
export class ClusterMigrationFailed extends Error {
  override name = 'Troveless.ClusterMigrationFailed';
}

/**
 * Returns once CLUSTER INFO says cluster_state:ok, with every slot and member, on every member,
 * no slot moving and each member serving its even share.
 */
export async function checkRedisCluster(members: InstanceItem[]): Promise<void> {
  const infos = [];
  for (const member of members)
    infos.push({ id: member.id, info: (await call(member, 'cluster_info')) as ClusterInfo });
  const failure = migrationFailure(infos);
  if (failure) throw new ClusterMigrationFailed(`${failure}.`);
  const reason = notFormed(infos, members.length, members.filter(isReplica).length);
  if (reason) throw new ClusterPending(`The cluster is not formed yet: ${reason}.`);
}

/**
 * The cluster account redis-cli and MIGRATE log in with on every member: the same password on
 * each, derived from the driving member's guest key, so a retried step sets the same one again
 * and nothing needs to keep it.
 */
async function clusterAccount(driver: InstanceItem): Promise<string> {
  const key = await unwrapKey(driver.wrapped_key);
  return createHmac('sha256', key)
    .update(`troveless cluster account ${driver.cluster_id}`)
    .digest('base64url');
}

async function setAccount(members: InstanceItem[], password: string): Promise<void> {
  for (const member of members)
    await callGuest(
      member,
      'cluster_account',
      {},
      { timeoutSeconds: config.callLowTimeoutSeconds, secret: { password } },
    );
}

/** Waits (a little) until every member knows every other; pending for the workflow otherwise. */
async function untilAllKnown(members: InstanceItem[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let known = true;
    for (const member of members) {
      const info = (await call(member, 'cluster_info')) as ClusterInfo;
      if (info.cluster_known_nodes < members.length) known = false;
    }
    if (known) return;
    if (Date.now() > deadline) throw new ClusterPending('The new members are not known to every member yet.');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Grow: the new members take the engine password the others have (a Redis Cluster client logs
 * in to every node with one: root's, when enabled), are met, and a rebalance starts on the first
 * member, moving each master's surplus slots with their keys to the new ones while clients keep
 * reading and writing (check waits for it).
 */
export async function addRedisMembers(existing: InstanceItem[], added: InstanceItem[]): Promise<void> {
  const [driver] = existing;
  if (!driver) throw new Error('a cluster without members cannot grow');
  const answer = (await call(driver, 'cluster_password')) as { sealed: string };
  const { password } = decryptWith(await unwrapKey(driver.wrapped_key), answer.sealed) as {
    password: string;
  };
  for (const member of added)
    await callGuest(
      member,
      'enable_root',
      {},
      {
        timeoutSeconds: config.callHighTimeoutSeconds,
        secret: { root_password: password },
      },
    );
  const account = await clusterAccount(driver);
  await setAccount([...existing, ...added], account);
  for (const member of added) await call(driver, 'cluster_meet', endpointOf(member));
  // A slot's move names its new owner to every node (SETSLOT NODE): each must know the new
  // members first, which gossip takes a moment to spread.
  await untilAllKnown([...existing, ...added]);
  // Before the rebalance: a replica not following yet is an empty master, which would take slots.
  await followMasters(added.filter(isReplica), [...existing, ...added]);
  // Replicas alone serve no slots: nothing moves.
  if (added.every(isReplica)) return;
  await callGuest(
    driver,
    'cluster_rebalance',
    { mode: 'grow' },
    {
      timeoutSeconds: config.callLowTimeoutSeconds,
      secret: { password: account },
    },
  );
}

/**
 * Shrink: a rebalance on the first remaining member gives every slot of the leaving members
 * (weight 0), with its keys, to the remaining ones, then every remaining member forgets them
 * (redis-cli --cluster del-node). Leaving replicas serve no slots: they are only forgotten, first
 * (the guest tells them by their role now). Members that never joined, or already left, are skipped.
 */
export async function removeRedisMembers(remaining: InstanceItem[], leaving: InstanceItem[]): Promise<void> {
  const [driver] = remaining;
  if (!driver) throw new Error('a cluster cannot shrink to no members');
  const reachable = leaving.filter((m) => m.addresses?.length);
  const account = await clusterAccount(driver);
  // redis-cli logs in to every node, the leaving ones too (each is MIGRATE's source for its slots).
  await setAccount([...remaining, ...reachable], account);
  await callGuest(
    driver,
    'cluster_rebalance',
    { mode: 'shrink', leaving: reachable.map(endpointOf) },
    {
      timeoutSeconds: config.callLowTimeoutSeconds,
      secret: { password: account },
    },
  );
}

/** Redis Cluster: masters, each with an optional replica, and the bus port open to the others. */
export const redisStrategy: ClusterStrategy = {
  minMembers: 3,
  replicas: true,
  peerPorts: (member) => [(member.addresses?.[0]?.port ?? 6379) + CLUSTER_BUS_OFFSET],
  form: formRedisCluster,
  check: checkRedisCluster,
  addMembers: addRedisMembers,
  removeMembers: removeRedisMembers,
};
