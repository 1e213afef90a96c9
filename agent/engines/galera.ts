import type { GaleraStatus } from '../../lib/clusters/galera-status.ts';

// MariaDB Galera on one member (Trove's galera_common cluster strategy, guest side): the wsrep
// lines of its configuration, what grastate.dat says after a stop, and the verdict on its
// wsrep status. Pure: agent/engines/galera-member.ts does the I/O.

/** Debian's galera-4 provider. */
export const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';

/** The account mariadb-backup logs in with on a donor during SST (RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR). */
export const SST_USER = 'troveless_sst';

/**
 * Galera's ports, relative to the engine's: 4567 (group communication), 4568 (IST) and 4444
 * (SST) for the standard 3306. Members on an address of their own use the standard ones; members
 * sharing one (each on its own engine port) get distinct ones the same way.
 */
export function galeraPorts(port: number): { group: number; ist: number; sst: number } {
  return { group: port + 1261, ist: port + 1262, sst: port + 1138 };
}

/** Who the cluster is, as every member's configuration names it. */
export interface GaleraMembership {
  /** wsrep_cluster_name: the cluster's id, so that no other cluster's member is ever admitted. */
  name: string;
  /** This member's address as its peers reach it. */
  self: string;
  /** Every member's address and engine port (this one's too), in the cluster's order. */
  members: { host: string; port: number }[];
}

/** gcomm:// with every member's group port: a (re)starting member joins whichever of them is up. */
export function clusterAddress(members: GaleraMembership['members']): string {
  return `gcomm://${members.map((m) => `${m.host}:${galeraPorts(m.port).group}`).join(',')}`;
}

/**
 * The [mariadbd] lines that make the engine a Galera member. Each listens on its own address and
 * announces it (wsrep_node_address, the IST and SST receive addresses): otherwise its peers
 * would learn the address its connections come from. pc.recovery lets the members re-form the
 * primary component by themselves when all of them come back after they all crashed. The SST
 * account's password is in `sstFile` (readable by the engine's group only), never here.
 */
export function galeraLines(
  m: GaleraMembership,
  port: number,
  bindAddress: string,
  sstFile: string,
): string[] {
  const ports = galeraPorts(port);
  const listen = ['0.0.0.0', '::', '*'].includes(bindAddress) ? '0.0.0.0' : bindAddress;
  return [
    'wsrep_on = ON',
    `wsrep_provider = ${GALERA_PROVIDER}`,
    `wsrep_cluster_name = ${m.name}`,
    `wsrep_cluster_address = ${clusterAddress(m.members)}`,
    `wsrep_node_address = ${m.self}:${ports.group}`,
    `wsrep_provider_options = "gmcast.listen_addr=tcp://${listen}:${ports.group};ist.recv_addr=${m.self}:${ports.ist};pc.recovery=TRUE"`,
    `wsrep_sst_receive_address = ${m.self}:${ports.sst}`,
    'wsrep_sst_method = mariabackup',
    // What Galera requires of the engine: row events, and no table locks on auto-increment.
    'binlog_format = ROW',
    'default_storage_engine = InnoDB',
    'innodb_autoinc_lock_mode = 2',
    `!include ${sstFile}`,
    // The SST stream's socat binds this member's own address: on a host it shares with other
    // members, a joiner listening on 0.0.0.0:4444 kept every other joiner from listening.
    '[sst]',
    `sockopt = ,bind=${m.self}`,
  ];
}

/** The SST account's file: wsrep_sst_auth as the server reads it (and hands to the SST script). */
export function sstAuthFile(password: string): string {
  return ['[mariadbd]', `wsrep_sst_auth = ${SST_USER}:${password}`, ''].join('\n');
}

/** What grastate.dat says: whether this member was the last of its cluster to stop (cleanly). */
export function safeToBootstrap(grastate: string | undefined): boolean {
  return /^safe_to_bootstrap:\s*1\s*$/m.test(grastate ?? '');
}

/** The status from SHOW GLOBAL STATUS LIKE 'wsrep_%' rows. */
export function parseStatus(rows: { Variable_name: string; Value: unknown }[]): GaleraStatus {
  const value = (name: string) => String(rows.find((r) => r.Variable_name === name)?.Value ?? '');
  return {
    cluster_size: Number(value('wsrep_cluster_size') || 0),
    cluster_status: value('wsrep_cluster_status') || 'Disconnected',
    local_state: value('wsrep_local_state_comment') || 'Disconnected',
    ready: value('wsrep_ready') === 'ON',
  };
}
