import type { Redis } from 'ioredis';
import { quote } from './redis-overrides.ts';

// Redis Cluster on one member (Trove's redis cluster guest calls: cluster_meet, cluster_addslots,
// plus the control plane's check of CLUSTER INFO). Each call is safe to repeat.

/** Redis's default: the cluster bus listens 10000 above the client port. */
export const CLUSTER_BUS_OFFSET = 10000;

/**
 * The redis.conf lines of a cluster member. With TLS the bus speaks TLS too (each member shows
 * its certificate, which the others check against the deployment CA); nodes.conf, Redis's own
 * record of the cluster, lives in the data dir beside the RDB. A member bound to its own address
 * announces it and connects from it: otherwise its peers learn the address its connections come
 * from (on one host, 127.0.0.1 for every member), where it does not listen.
 */
export function clusterLines(port: number, tls: boolean, bindAddress: string): string[] {
  const own = !['0.0.0.0', '::', '*'].includes(bindAddress);
  return [
    'cluster-enabled yes',
    ...(own ? [`cluster-announce-ip ${bindAddress}`, `bind-source-addr ${bindAddress}`] : []),
    `cluster-config-file ${quote('nodes.conf')}`,
    `cluster-port ${port + CLUSTER_BUS_OFFSET}`,
    // A master unreachable this long is failed over to its replica (when it has one).
    'cluster-node-timeout 5000',
    ...(tls ? ['tls-cluster yes'] : []),
  ];
}

export async function meet(client: Redis, host: string, port: number): Promise<void> {
  await client.call('CLUSTER', 'MEET', host, String(port));
}

/** The slots this node serves, from the `myself` line of CLUSTER NODES. */
export function ownSlots(nodes: string): Set<number> {
  const owned = new Set<number>();
  const myself = nodes.split('\n').find((line) => line.split(' ')[2]?.split(',').includes('myself'));
  for (const field of myself?.trim().split(' ').slice(8) ?? []) {
    // `[slot->-node]` and `[slot-<-node]` mark migrations in flight, not ownership.
    const range = /^(\d+)(?:-(\d+))?$/.exec(field);
    if (!range) continue;
    const start = Number(range[1]);
    const end = Number(range[2] ?? range[1]);
    for (let s = start; s <= end; s++) owned.add(s);
  }
  return owned;
}

/** Contiguous runs of the slots of `ranges` this node does not serve yet. */
export function missingRuns(ranges: [number, number][], owned: Set<number>): [number, number][] {
  const runs: [number, number][] = [];
  for (const [start, end] of ranges) {
    let runStart: number | undefined;
    for (let s = start; s <= end + 1; s++) {
      const missing = s <= end && !owned.has(s);
      if (missing && runStart === undefined) runStart = s;
      if (!missing && runStart !== undefined) {
        runs.push([runStart, s - 1]);
        runStart = undefined;
      }
    }
  }
  return runs;
}

/** Takes the slots of `ranges` that this node does not serve yet (a repeat adds nothing). */
export async function addSlots(client: Redis, ranges: [number, number][]): Promise<void> {
  const owned = ownSlots(String(await client.call('CLUSTER', 'NODES')));
  for (const [start, end] of missingRuns(ranges, owned))
    await client.call('CLUSTER', 'ADDSLOTSRANGE', String(start), String(end));
}

export interface ClusterInfo {
  cluster_state: string;
  cluster_slots_assigned: number;
  cluster_known_nodes: number;
  cluster_size: number;
}

export function parseInfo(text: string): ClusterInfo {
  const fields = new Map(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as const),
  );
  return {
    cluster_state: fields.get('cluster_state') ?? 'unknown',
    cluster_slots_assigned: Number(fields.get('cluster_slots_assigned') ?? 0),
    cluster_known_nodes: Number(fields.get('cluster_known_nodes') ?? 0),
    cluster_size: Number(fields.get('cluster_size') ?? 0),
  };
}

export async function info(client: Redis): Promise<ClusterInfo> {
  return parseInfo(String(await client.call('CLUSTER', 'INFO')));
}

/** The id of the node CLUSTER NODES lists at host:port, if it knows one there. */
export function nodeIdAt(nodes: string, host: string, port: number): string | undefined {
  for (const line of nodes.split('\n')) {
    const [id, address] = line.trim().split(' ');
    // `ip:port@cport[,hostname]`
    if (id && address?.split('@')[0] === `${host}:${port}`) return id;
  }
  return undefined;
}

/** How many slots this node serves, and whether one of its slots is being moved in or out. */
export function ownShare(nodes: string): { slots: number; migrating: boolean } {
  const myself = nodes.split('\n').find((line) => line.split(' ')[2]?.split(',').includes('myself'));
  const fields = myself?.trim().split(' ').slice(8) ?? [];
  return { slots: ownSlots(nodes).size, migrating: fields.some((f) => f.startsWith('[')) };
}

/** The `myself` line of CLUSTER NODES, split into its fields. */
function myself(nodes: string): string[] {
  const line = nodes.split('\n').find((l) => l.split(' ')[2]?.split(',').includes('myself'));
  return line?.trim().split(' ') ?? [];
}

/** This node's role, and the master it follows when it is a replica (CLUSTER NODES says `slave`). */
export function roleOf(nodes: string): { role: 'master' | 'replica'; master?: string } {
  const [, , flags, master] = myself(nodes);
  if (flags?.split(',').includes('slave') && master && master !== '-') return { role: 'replica', master };
  return { role: 'master' };
}

/** Thrown while this node does not know the master it is to follow yet (gossip spreads it). */
export class MasterNotKnown extends Error {
  override name = 'MasterNotKnown';
}

/**
 * CLUSTER REPLICATE the node at host:port, unless this node follows it already (a repeated call
 * changes nothing). The node must have no slots and no keys, as a freshly built member has none.
 */
export async function replicate(client: Redis, host: string, port: number): Promise<void> {
  const nodes = String(await client.call('CLUSTER', 'NODES'));
  // A node still in handshake is listed under a made-up id, which CLUSTER REPLICATE would refuse.
  const settled = nodes
    .split('\n')
    .filter((l) => !l.split(' ')[2]?.split(',').includes('handshake'))
    .join('\n');
  const master = nodeIdAt(settled, host, port);
  if (!master) throw new MasterNotKnown(`this member does not know the node at ${host}:${port} yet`);
  if (roleOf(nodes).master === master) return;
  await client.call('CLUSTER', 'REPLICATE', master);
}

/** `master_link_status` of INFO replication: `up` once a replica has synced with its master. */
export function masterLinkStatus(info: string): string | undefined {
  return /^master_link_status:(\S+)/m.exec(info)?.[1];
}

/** The node ids CLUSTER NODES flags as replicas (`slave`). */
export function replicaIds(nodes: string): string[] {
  return nodes
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter(([id, , flags]) => id && flags?.split(',').includes('slave'))
    .map(([id]) => id as string);
}
