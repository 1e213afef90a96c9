import { tool, tryTool } from './run.ts';

// allowed_cidrs enforced on the instance's own address, as a security group per instance is in
// Trove: a table of the host's own (nftables), never touching any other table. The whole table is
// written again in one transaction on every change (a handful of rules per instance), so a change
// is atomic and takes effect for the next connection.
//
//  - input: to the instance's address and port, only sources in allowed_cidrs (and the instance's
//    own address) get through; others are refused (port unreachable, so clients fail at once);
//  - output: the instance's OS user (its engine, and whatever a tenant runs through COPY ...
//    PROGRAM) opens no connection to anything but its own address, and its replica set's peers'
//    engine ports (replication). Such a connection is marked (conntrack mark) as it leaves, and
//    the peer's input chain admits marked connections whatever its allowed_cidrs: an engine's
//    replication client cannot always choose its source address (libpq cannot), so the peer is
//    recognised by the OS user that opened the connection, not by an address.

export interface FirewallEntry {
  key: string;
  address: string;
  port: number;
  /** Empty or absent: 0.0.0.0/0, as Trove's default. */
  allowedCidrs?: string[];
  uid?: number;
  /** Keys of the servers of the same replica set, whose engine ports this server's user may reach. */
  peers?: string[];
  /** Ports beside `port` that peers may reach and that are otherwise restricted like it (a cluster bus). */
  extraPorts?: number[];
  /**
   * Sources admitted whatever allowed_cidrs say: the addresses of the writer endpoints that lead
   * here (their forwarder connects from them, after checking its clients against the same rules).
   */
  admit?: string[];
}

/** The conntrack mark of a connection a replica set's member opened to a peer's engine port. */
const PEER_MARK = '0x7e91';

/** The host's table: one per state dir, so two local clouds never rewrite each other's rules. */
export function tableName(hostKey: string): string {
  return `troveless_${hostKey}`;
}

/** The entry's engine port, or the set of it and its extra ports (nft's `{ a, b }`). */
function portSet(e: FirewallEntry): string {
  const ports = [e.port, ...(e.extraPorts ?? [])];
  return ports.length === 1 ? String(e.port) : `{ ${ports.join(', ')} }`;
}

export function renderTable(table: string, entries: FirewallEntry[], owner?: string): string {
  const lines = [
    // Declaring then deleting makes the script work whether or not the table exists.
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    // The compute dir of the host that owns it: a later host removes it once that dir is gone.
    ...(owner ? [`  comment ${JSON.stringify(owner)}`] : []),
  ];
  const input: string[] = [];
  const output: string[] = [];
  const peering: string[] = [];
  const byKey = new Map(entries.map((e) => [e.key, e]));
  for (const e of [...entries].sort((a, b) => a.key.localeCompare(b.key))) {
    const chain = `instance_${e.key}`;
    const cidrs = e.allowedCidrs?.length ? e.allowedCidrs : ['0.0.0.0/0'];
    lines.push(
      `  chain ${chain} {`,
      `    ip saddr ${e.address} accept`,
      `    ip saddr { ${cidrs.join(', ')} } accept`,
      ...(e.peers?.length ? [`    ct mark ${PEER_MARK} accept`] : []),
      ...(e.admit?.length ? [`    ip saddr { ${e.admit.join(', ')} } accept`] : []),
      '    reject',
      '  }',
    );
    for (const peer of (e.peers ?? []).map((k) => byKey.get(k)).filter((p) => p !== undefined)) {
      if (e.uid === undefined) continue;
      peering.push(
        `    meta skuid ${e.uid} ct state new ip daddr ${peer.address} tcp dport ${portSet(peer)} ct mark set ${PEER_MARK} accept`,
      );
    }
    input.push(`    ip daddr ${e.address} tcp dport ${portSet(e)} jump ${chain}`);
    if (e.uid !== undefined) {
      output.push(`    meta skuid ${e.uid} ct state new ip daddr != ${e.address} reject`);
      output.push(`    meta skuid ${e.uid} ct state new meta nfproto ipv6 reject`);
    }
  }
  lines.push(
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    ...input,
    '  }',
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    ...peering,
    ...output,
    '  }',
    '}',
    '',
  );
  return lines.join('\n');
}

export class Firewall {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly table: string,
    private readonly owner?: string,
  ) {}

  /** Writes the table for exactly these entries (one at a time: the last write wins in order). */
  apply(entries: FirewallEntry[]): Promise<void> {
    const script = renderTable(this.table, entries, this.owner);
    const run = this.queue.catch(() => {}).then(() => tool('nft', ['-f', '-'], { input: script }));
    this.queue = run.catch(() => {});
    return run.then(() => {});
  }

  async remove(): Promise<void> {
    await this.queue.catch(() => {});
    const out = await tryTool('nft', ['delete', 'table', 'inet', this.table]);
    if (out.code !== 0 && !/No such file or directory/.test(out.stderr)) {
      throw new Error(`nft delete table inet ${this.table}: ${out.stderr.trim()}`);
    }
  }
}

/**
 * The tables of hosts whose compute dir no longer exists (a local cloud or bench killed before its
 * teardown, its state removed). Their rules name OS users by uid, and uids are reused: a new
 * instance's user would inherit a dead one's egress rules (its replication refused). Returns the
 * tables removed.
 */
export async function removeOrphanTables(own: string, exists: (dir: string) => boolean): Promise<string[]> {
  const out = await tryTool('nft', ['list', 'tables']);
  if (out.code !== 0) return [];
  const removed: string[] = [];
  for (const [, name] of out.stdout.matchAll(/^table inet (troveless_\w+)$/gm)) {
    if (!name || name === own) continue;
    // nft 1.0.6 leaves a table's comment out of its JSON: the text listing has it.
    const listed = await tryTool('nft', ['list', 'table', 'inet', name]);
    const owner = /^\s*comment "(.*)"$/m.exec(listed.stdout)?.[1];
    if (!owner || exists(owner)) continue;
    if ((await tryTool('nft', ['delete', 'table', 'inet', name])).code === 0) removed.push(name);
  }
  return removed;
}
