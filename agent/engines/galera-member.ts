import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GaleraStatus } from '../../lib/clusters/galera-status.ts';
import { type Account, account, readIfExists, writeConfig } from './fs.ts';
import {
  type GaleraMembership,
  galeraLines,
  galeraPorts,
  parseStatus,
  SST_USER,
  safeToBootstrap,
  sstAuthFile,
} from './galera.ts';
import type { MariaDbSession } from './mariadb-session.ts';
import { portOpen } from './process.ts';

// A MariaDB instance as a Galera member (agent/cluster-operations.ts's galera_* calls). Its
// membership (galera.json) is the record that it is one: configure() then renders galera.cnf,
// and every start joins the cluster's other members. Only two starts ever make a new cluster
// (--wsrep-new-cluster): the first member's at the cluster's birth (bootstrap), and a start of
// the member that was the last of a wholly stopped cluster to stop, when no other member
// answers (see start()).

/** What the member needs of its engine. */
export interface GaleraEngine {
  baseDir: string;
  dataDir: string;
  port: number;
  bindAddress: string;
  user: string;
  admin<T>(work: (session: MariaDbSession) => Promise<T>): Promise<T>;
  healthy(): Promise<boolean>;
  /** Its process is there (answering or not yet: a joiner receiving its state transfer). */
  running(): Promise<boolean>;
  stop(): Promise<void>;
  /** Starts the engine; with `newCluster`, as the first member of a new cluster. */
  start(newCluster: boolean): Promise<void>;
}

const PEER_PROBE_MS = 1_000;

export class GaleraMember {
  readonly configFile: string;
  private readonly stateFile: string;
  private readonly sstFile: string;
  /** Why the last join's start failed (galera_status says it until the engine runs). */
  private startFailure: string | undefined;

  constructor(private readonly engine: GaleraEngine) {
    this.configFile = join(engine.baseDir, 'galera.cnf');
    this.stateFile = join(engine.baseDir, 'galera.json');
    this.sstFile = join(engine.baseDir, 'galera-sst.cnf');
  }

  async membership(): Promise<GaleraMembership | undefined> {
    const text = await readIfExists(this.stateFile);
    return text === undefined ? undefined : (JSON.parse(text) as GaleraMembership);
  }

  /** galera.cnf: the wsrep lines once the instance is a member, an empty section before. */
  async writeConfig(owner: Account): Promise<void> {
    const m = await this.membership();
    const lines = m ? galeraLines(m, this.engine.port, this.engine.bindAddress, this.sstFile) : [];
    await writeConfig(this.configFile, ['[mariadbd]', ...lines, ''].join('\n'), { uid: 0, gid: owner.gid });
  }

  /** The membership and the SST account's password (readable by the engine's group only). */
  private async record(m: GaleraMembership, password: string): Promise<void> {
    const owner = await account(this.engine.user);
    await writeConfig(this.sstFile, sstAuthFile(password), { uid: 0, gid: owner.gid }, 0o640);
    await writeFile(this.stateFile, `${JSON.stringify(m)}\n`, { mode: 0o600 });
    await this.writeConfig(owner);
  }

  /** The SST account, with this password, on the member (in a primary component: it replicates). */
  private ensureSstAccount(password: string): Promise<void> {
    return this.engine.admin(async (s) => {
      await s.run(
        'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?',
        [SST_USER, 'localhost', password],
        [password],
      );
      await s.run('ALTER USER ?@? IDENTIFIED BY ?', [SST_USER, 'localhost', password], [password]);
      await s.run('GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO ?@?', [
        SST_USER,
        'localhost',
      ]);
      // A running member donates with what it read at start: it takes the new password now too.
      await s.run('SET GLOBAL wsrep_sst_auth = ?', [`${SST_USER}:${password}`], [password]);
    });
  }

  /** In a primary component and taking queries: a member already, nothing to start. */
  private async inPrimary(): Promise<boolean> {
    if (!(await this.membership()) || !(await this.engine.healthy())) return false;
    const status = await this.status().catch(() => undefined);
    return status?.cluster_status === 'Primary' && status.ready;
  }

  /**
   * The cluster's birth on its first member: restarted as a new cluster (whatever it ran as
   * before: standalone, or a bootstrap cut short), then the SST account created, which the
   * joiners' state transfers copy. Repeated on a member already in its primary component, only
   * the membership and the account are brought up to date.
   */
  async bootstrap(m: GaleraMembership, password: string): Promise<void> {
    const formed = await this.inPrimary();
    await this.record(m, password);
    if (!formed) {
      await this.engine.stop();
      await this.engine.start(true);
    }
    await this.ensureSstAccount(password);
  }

  /**
   * Joins the cluster of `m` (a state transfer by mariadb-backup replaces this member's data with
   * a donor's): returns once the engine is starting. On a member already in it (a repeat, or a
   * grow telling the others who the members are now) only the membership and the account are
   * brought up to date: the next start reads them.
   */
  async join(m: GaleraMembership, password: string): Promise<void> {
    if (await this.inPrimary()) {
      await this.record(m, password);
      await this.ensureSstAccount(password);
      return;
    }
    // A repeat while the join is under way (its state transfer can outlast the call): the
    // control plane's check waits for it; a restart would only start the transfer again.
    const joining =
      JSON.stringify(await this.membership()) === JSON.stringify(m) && (await this.engine.running());
    await this.record(m, password);
    if (joining) return;
    await this.engine.stop();
    // Not waited for: the state transfer takes as long as the data takes to copy, and the
    // control plane's check follows the join through galera_status (Joiner, Joined, Synced).
    this.startFailure = undefined;
    void this.engine.start(false).catch((err: Error) => {
      this.startFailure = err.message;
    });
  }

  /** A clean leave (shrink): the engine stops, so its peers see it go, and is a member no more. */
  async leave(): Promise<void> {
    await this.engine.stop();
  }

  async status(): Promise<GaleraStatus> {
    if (this.startFailure && !(await this.engine.running()))
      throw new Error(`the engine did not join its cluster: ${this.startFailure}`);
    return parseStatus(
      (await this.engine.admin((s) => s.rows("SHOW GLOBAL STATUS LIKE 'wsrep\\_%'"))) as {
        Variable_name: string;
        Value: unknown;
      }[],
    );
  }

  /**
   * Whether this start must make a new cluster. All members down: the one that stopped last
   * (cleanly: grastate.dat's safe_to_bootstrap) holds every commit, and no other member can
   * start without a primary component to join. So when it starts and none of the others
   * answers on its group port, it bootstraps; the others join it as they come back. Members that
   * all crashed have no safe_to_bootstrap: pc.recovery re-forms their component once all are
   * back. Any other start joins.
   */
  async startsNewCluster(): Promise<boolean> {
    const m = await this.membership();
    if (!m) return false;
    const grastate = existsSync(join(this.engine.dataDir, 'grastate.dat'))
      ? await readFile(join(this.engine.dataDir, 'grastate.dat'), 'utf8')
      : undefined;
    if (!safeToBootstrap(grastate)) return false;
    const others = m.members.filter((p) => p.host !== m.self || p.port !== this.engine.port);
    const answers = await Promise.all(
      others.map((p) => portOpen(p.host, galeraPorts(p.port).group, PEER_PROBE_MS)),
    );
    return !answers.some(Boolean);
  }
}
