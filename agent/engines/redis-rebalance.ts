import { execFile } from 'node:child_process';
import { engineEnv } from './process.ts';

// Redis Cluster's own tool moves slots with their keys live (redis-cli --cluster rebalance and
// del-node: per slot SETSLOT IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE), which clients
// follow through ASK and MOVED redirects. It runs on one member, as that member's OS user (its
// connections to the peers are the ones the firewall lets through), logged in as the cluster
// account: its password reaches redis-cli in REDISCLI_AUTH, never in its arguments. A migration
// takes as long as the data does, so it runs in the background: the order that starts it answers
// at once, and cluster_info says how it goes (the control plane's check waits on that).

/** The cluster account's rules: the commands redis-cli --cluster and MIGRATE's target side need. */
export const CLUSTER_ACCOUNT_RULES = [
  '+cluster|nodes',
  '+cluster|info',
  '+cluster|myid',
  '+cluster|slots',
  '+cluster|setslot',
  '+cluster|getkeysinslot',
  '+cluster|countkeysinslot',
  '+cluster|forget',
  '+cluster|reset',
  '+migrate',
  '+restore-asking',
  '+asking',
  '+select',
  '+ping',
  // A replica's link to its master logs in as this account (masteruser).
  '+psync',
  '+replconf',
  '+info',
  '+auth',
  '+hello',
  '~*',
];
export const CLUSTER_ACCOUNT_USER = 'troveless_cluster';

export interface RebalanceRequest {
  /** A grow spreads the slots over every master, new ones too; a shrink empties `leaving`. */
  mode: 'grow' | 'shrink';
  /** host:port of this member, where redis-cli enters the cluster. */
  entry: string;
  /** Node ids whose slots all move to the others before they are removed (those still known). */
  leaving: string[];
  /** Leaving replicas' node ids: they serve no slots, and are removed before any master leaves. */
  leavingReplicas?: string[];
  password: string;
  /** The CA that signed the members' certificates, when the members speak TLS. */
  ca?: string;
}

export interface RebalanceState {
  state: 'running' | 'failed' | 'done';
  error?: string;
}

/** The redis-cli argument lists, in order, for one grow (rebalance) or shrink (move away, del-node). */
export function rebalanceCommands(req: RebalanceRequest): string[][] {
  const common = [
    ...(req.ca ? ['--tls', '--cacert', req.ca] : []),
    '--user',
    CLUSTER_ACCOUNT_USER,
    '--no-auth-warning',
  ];
  if (req.mode === 'grow')
    return [[...common, '--cluster', 'rebalance', req.entry, '--cluster-use-empty-masters']];
  // Replicas go first: a master emptied of its slots would hand its replica to another master.
  const replicas = (req.leavingReplicas ?? []).map((id) => [
    ...common,
    '--cluster',
    'del-node',
    req.entry,
    id,
  ]);
  // A shrink repeated after its members were removed finds none left: nothing to do.
  if (req.leaving.length === 0) return replicas;
  return [
    ...replicas,
    [
      ...common,
      '--cluster',
      'rebalance',
      req.entry,
      ...req.leaving.flatMap((id) => ['--cluster-weight', `${id}=0`]),
    ],
    ...req.leaving.map((id) => [...common, '--cluster', 'del-node', req.entry, id]),
  ];
}

/** `--cluster fix` with the same connection options and entry node as `args`. */
export function fixCommand(args: string[]): string[] {
  const at = args.indexOf('--cluster');
  return [...args.slice(0, at), '--cluster', 'fix', args[at + 2] as string];
}

/** One background migration per member at a time; its outcome stays until the next one starts. */
export class RebalanceJob {
  private current: RebalanceState | undefined;

  constructor(private readonly user: string) {}

  get state(): RebalanceState | undefined {
    return this.current;
  }

  /** Forgets a finished job's outcome (a new grow or shrink starts on this member). */
  clear(): void {
    if (this.current?.state !== 'running') this.current = undefined;
  }

  /** Starts the commands unless a job already runs (a repeated order joins it). */
  start(req: RebalanceRequest): RebalanceState {
    if (this.current?.state === 'running') return this.current;
    const job: RebalanceState = { state: 'running' };
    this.current = job;
    void this.runAll(rebalanceCommands(req), req.password).then(
      () => {
        job.state = 'done';
      },
      (err: Error) => {
        job.state = 'failed';
        job.error = err.message;
      },
    );
    return job;
  }

  private async runAll(commands: string[][], password: string): Promise<void> {
    for (const args of commands) {
      // A move cut short (a node that did not know the target yet, a connection lost) leaves its
      // slot open, half migrated, and redis-cli then refuses to go on: `--cluster fix` finishes
      // that slot's move (its keys included), and the command runs again, a moment later.
      let first: Error | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          await this.redisCli(args, password);
          break;
        } catch (err) {
          first ??= err as Error;
          if (attempt >= 5) throw first;
          await new Promise((r) => setTimeout(r, 2_000));
          await this.redisCli(fixCommand(args), password).catch(() => undefined);
        }
      }
    }
  }

  private redisCli(args: string[], password: string): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(
        'runuser',
        ['-u', this.user, '--', 'redis-cli', ...args],
        { cwd: '/', maxBuffer: 16 * 1024 * 1024, env: { ...engineEnv(), REDISCLI_AUTH: password } },
        (err, stdout, stderr) => {
          if (!err) return resolve();
          // redis-cli says what went wrong in its [ERR] lines; its progress dots say nothing.
          const lines = `${stdout}\n${stderr}`.split('\n').filter((l) => /ERR|error|\*\*\*/i.test(l));
          reject(
            new Error(
              `redis-cli --cluster ${args.at(args.indexOf('--cluster') + 1)} failed: ${lines.slice(0, 5).join(' ') || err.message}`,
            ),
          );
        },
      );
    });
  }
}
