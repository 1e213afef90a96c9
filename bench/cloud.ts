// What the provision, api and heartbeat benches share: a local cloud of their own (free ports, a
// temp state dir, wiped), a check that it left nothing running, HTTP calls with a token, and the
// figures (percentiles, tables).

import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { seedVersions } from '../lib/catalog/seed-data.ts';
import type { InstanceItem } from '../lib/instances/model.ts';
import { parsePhases } from '../lib/phases.ts';
import { type LocalCloud, startLocalCloud } from '../local/cloud.ts';
import { localCredentials } from '../local/dynamodb.ts';
import { freePort } from '../local/ports.ts';
import { withTimeout } from '../local/wait.ts';

export const ROOT = resolve(import.meta.dirname, '..');
const START_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- processes ----

interface Proc {
  pid: number;
  pgrp: number;
  state: string;
  cmdline: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return { pid, state: f[0] ?? '', pgrp: Number(f[2]), cmdline };
  } catch {
    return undefined;
  }
}

function allProcs(): Proc[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is Proc => p !== undefined && p.state !== 'Z' && p.pid !== process.pid);
}

/**
 * What a bench started: process groups (the cloud's children lead their own) and paths that only
 * its processes name on their command line (state dir, baseline data dirs). Nothing else is touched.
 */
export class Tracked {
  readonly groups = new Set<number>();
  readonly markers = new Set<string>();

  /** The groups the local cloud recorded in its pid file (emptied on a clean stop: read it before). */
  rememberPidFile(path: string): void {
    try {
      for (const { pid } of JSON.parse(readFileSync(path, 'utf8')) as { pid?: number }[])
        if (pid) this.groups.add(pid);
    } catch {
      // not written yet
    }
  }

  leftovers(): Proc[] {
    return allProcs().filter(
      (p) => this.groups.has(p.pgrp) || [...this.markers].some((m) => p.cmdline.includes(m)),
    );
  }

  killAll(): Proc[] {
    const left = this.leftovers();
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return left;
  }

  /** Gives dying processes a moment, then reports and kills whatever is still there. */
  async checkNothingLeft(label: string): Promise<boolean> {
    for (let i = 0; i < 50 && this.leftovers().length; i++) await sleep(100);
    const left = this.killAll();
    for (const p of left)
      console.log(`  LEFT RUNNING after ${label}: pid ${p.pid} ${p.cmdline.slice(0, 120)}`);
    return left.length === 0;
  }
}

/** Temp dirs and tracked processes of a bench, cleaned up on Ctrl-C as well as at the end. */
export class Cleanup {
  readonly tracked = new Tracked();
  readonly dirs: string[] = [];
  readonly #onSignal = () => {
    for (const p of this.tracked.killAll()) console.log(`  killed pid ${p.pid}`);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    process.exit(130);
  };

  constructor() {
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    this.tracked.markers.add(dir);
    return dir;
  }

  /** Kills what is left (saying so), removes the temp dirs; true when nothing was left running. */
  async finish(label: string): Promise<boolean> {
    const clean = await this.tracked.checkNothingLeft(label);
    // TROVELESS_BENCH_LOGS=<dir>: the cloud's and the guests' logs are kept there, for reading
    // what a bench saw (a failover that came late) after its state is gone.
    const keep = process.env.TROVELESS_BENCH_LOGS;
    for (const d of this.dirs) {
      if (keep)
        await cp(d, join(keep, basename(d)), {
          recursive: true,
          filter: (src) => !/\/(data|s3|dynamodb|volumes|build)(\/|$)/.test(src.slice(d.length)),
        }).catch(() => {});
      await rm(d, { recursive: true, force: true });
    }
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
    return clean;
  }
}

// ---- the local cloud ----

export interface BenchCloud {
  cloud: LocalCloud;
  stateDir: string;
  api: string;
  /** Seconds from start to ready. */
  startSeconds: number;
  /** Log lines of the cloud itself (event sources, runner, compute host) that say something failed. */
  problems: string[];
  /**
   * Per server id, the phases of its launch as the compute host logged them (lib/phases.ts):
   * address, user, file, mkfs, mount, cgroups, isolation, rules, agent, launch (ms).
   */
  launches: Map<string, Map<string, number>>;
  stop(): Promise<void>;
}

const BENCH_RATE_LIMITS = ['POST', 'PUT', 'DELETE', 'GET']
  .map((verb) => `(${verb}, *, .*, 1000000, MINUTE)`)
  .join(';');

/** A whole local cloud of the bench's own: free ports, a temp state dir, wiped. */
export async function startBenchCloud(
  cleanup: Cleanup,
  name: string,
  env: Record<string, string> = {},
  /** Services the bench runs itself (the cost bench puts counting proxies in front of them). */
  external?: { sqs?: string; dynamodb?: string; s3?: string },
): Promise<BenchCloud> {
  // Short: engines' unix sockets live below it, and sun_path holds 107 bytes.
  const stateDir = await cleanup.tempDir(`troveless-bench-${name}-`);
  // local/cloud.ts bundles the handlers inside the repository, named after the state dir; its stop
  // removes them, and so does the cleanup should the bench be interrupted.
  cleanup.dirs.push(
    join(ROOT, '.local', 'build', createHash('sha1').update(resolve(stateDir)).digest('hex').slice(0, 12)),
  );
  const pidFile = join(stateDir, 'pids.json');
  const ports = {
    api: await freePort(),
    lambda: await freePort(),
    dynamodb: await freePort(),
    sqs: await freePort(),
    s3: await freePort(),
    stepfunctions: await freePort(),
    compute: await freePort(),
    doorbell: await freePort(),
  };
  const tail: string[] = [];
  const problems: string[] = [];
  const launches = new Map<string, Map<string, number>>();
  const t0 = performance.now();
  const starting = startLocalCloud({
    root: ROOT,
    stateDir,
    stage: 'local',
    host: '127.0.0.1',
    ports,
    wipe: true,
    // The benches measure the API, not Trove's 200 requests a minute: the limiter still counts
    // every request, it only never refuses one. At a million a minute a function holds up to 100
    // requests in memory between writes (lib/limits/store.ts): the write is measured 1 in 100.
    env: { TROVELESS_RATE_LIMITS: BENCH_RATE_LIMITS, ...env },
    external,
    log: (line) => {
      if (process.env.TROVELESS_BENCH_VERBOSE) console.log(`    [cloud] ${line}`);
      if (tail.push(line) > 20) tail.shift();
      if (/fail|error|timeout/i.test(line)) problems.push(line);
      const launched = /\[compute\] launched (srv-\S+) .*\((.*)\)$/.exec(line);
      if (launched?.[1] && launched[2]) launches.set(launched[1], parsePhases(launched[2]));
      cleanup.tracked.rememberPidFile(pidFile);
    },
  });
  let cloud: LocalCloud;
  try {
    cloud = await withTimeout('local cloud start', starting, START_TIMEOUT_MS);
  } catch (err) {
    cleanup.tracked.rememberPidFile(pidFile);
    // Still starting after the timeout: stop it should it get there before the bench exits.
    starting.then((late) => late.stop()).catch(() => {});
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`${msg}\n--- last cloud log lines ---\n${tail.join('\n')}`);
  }
  const startSeconds = (performance.now() - t0) / 1000;
  cleanup.tracked.rememberPidFile(pidFile);
  return {
    cloud,
    stateDir,
    api: cloud.endpoints.api,
    startSeconds,
    problems,
    launches,
    stop: async () => {
      cleanup.tracked.rememberPidFile(pidFile);
      await withTimeout('local cloud stop', cloud.stop(), STOP_TIMEOUT_MS);
    },
  };
}

// ---- cores ----

/** A process's `Cpus_allowed_list` as the kernel writes it ("0-1", "2,3", ...); this one's by default. */
export function cpusAllowed(pid: number | 'self' = 'self'): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '';
}

/** The CPUs this process may run on, in order. */
function allowedCpus(): number[] {
  return cpusAllowed()
    .split(',')
    .flatMap((part) => {
      const [from, to = from] = part.split('-').map(Number);
      if (from === undefined || to === undefined || !Number.isInteger(from) || !Number.isInteger(to))
        return [];
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });
}

/** What `pinTableApart` did, and whether the table is still where it was put. */
export interface Pinning {
  /** For the report: what was pinned where, or why nothing was. */
  said: string;
  /** Still so at the end: the same DynamoDB Local (not one restarted by its supervisor since). */
  held(): boolean;
}

/**
 * DynamoDB Local alone on the last CPU this process may use, and this process with every other
 * process group of the bench's cloud on the others (`taskset`, every thread of each). In AWS the
 * table is a service of its own, with its own capacity; here it shares two cores with the SQS
 * server, the Lambda runtime and the load the bench sends, so a rate measured against it says as
 * much about who else ran as about the table. Pinned, the table has the same core whoever sends it
 * updates, in the raw loop and in the run set against it. With fewer than two CPUs, or no
 * DynamoDB Local of its own, nothing is pinned and it says so; a `taskset` that fails on a process
 * still running fails the bench (a half-pinned cloud would measure neither way).
 */
export function pinTableApart(stateDir: string): Pinning {
  const cpus = allowedCpus();
  if (cpus.length < 2) return notPinned(`${cpus.length} CPU allowed`);
  const started = () =>
    JSON.parse(readFileSync(join(stateDir, 'pids.json'), 'utf8')) as { name: string; pid?: number }[];
  const tableOf = (entries: ReturnType<typeof started>) => entries.find((e) => e.name === 'dynamodb')?.pid;
  const entries = started();
  const table = tableOf(entries);
  if (!table || !readProc(table)?.cmdline.includes('DynamoDBLocal.jar'))
    return notPinned('no DynamoDB Local of its own in this cloud');
  const groups = new Set(entries.flatMap((e) => (e.pid ? [e.pid] : [])));
  const last = String(cpus.at(-1));
  const others = cpus.slice(0, -1).join(',');
  const pin = (list: string, pid: number) => {
    // A thread or process that ends meanwhile makes taskset fail: once more, then only if it runs.
    for (let attempt = 0; ; attempt++) {
      try {
        execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', list, String(pid)], { stdio: 'pipe' });
        return;
      } catch (err) {
        if (!readProc(pid)) return;
        if (attempt > 0) throw new Error(`taskset of pid ${pid} to CPU ${list} failed: ${err}`);
      }
    }
  };
  // Not this process's group: the shell that ran the bench is in it, and would hand the pin on to
  // whatever it runs next (another bench, on one core).
  for (const p of allProcs()) {
    if (p.pgrp === table) pin(last, p.pid);
    else if (groups.has(p.pgrp)) pin(others, p.pid);
  }
  pin(others, process.pid);
  return {
    said: `DynamoDB Local pinned to CPU ${last}, the rest of the bench to CPU ${others}`,
    held: () => tableOf(started()) === table,
  };
}

/** Nothing pinned, and why (for the report): it holds by definition. */
export const notPinned = (why: string): Pinning => ({ said: `not pinned: ${why}`, held: () => true });

// ---- instance items written directly ----

export const INSTANCES_TABLE = 'troveless-local-instances';

export function dynamoClient(cloud: LocalCloud): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: cloud.endpoints.dynamodb,
    region: 'us-east-1',
    credentials: localCredentials,
  });
}

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

const troveTime = (d: Date) => d.toISOString().slice(0, 19);

/**
 * An instance as a settled, healthy one looks in the table (lib/instances/model.ts): the datastore
 * from the seeded catalog, flavor 7 (ds512M), an address with its own port, a volume report. No
 * server_id: the scheduled server-status sync would ask the compute host about each one every
 * minute (and mark them SHUTDOWN), adding load the benches do not mean to measure.
 */
export function instanceItem(projectId: string, n: number, wrappedKey: string): InstanceItem {
  const engines = ['mysql', 'postgresql', 'redis'];
  const version =
    seedVersions.find((v) => v.datastore_name === engines[n % engines.length]) ?? seedVersions[0];
  if (!version) throw new Error('the seeded catalog has no versions');
  const now = new Date();
  const created = troveTime(new Date(now.getTime() - (n + 1) * 60_000));
  return {
    project_id: projectId,
    id: randomUUID(),
    name: `bench-${String(n).padStart(4, '0')}`,
    created,
    updated: created,
    region: 'RegionOne',
    flavor_id: '7',
    flavor_ram: 512,
    volume_size: 1,
    datastore: {
      type: version.datastore_name,
      version: version.name,
      version_id: version.id,
      version_number: version.version,
      manager: version.manager,
    },
    task_status: 'NONE',
    service_status: 'healthy',
    service_status_updated: troveTime(now),
    server_status: 'ACTIVE',
    addresses: [{ address: '127.0.0.1', type: 'private', port: 20_000 + n }],
    volume_used_bytes: 48_000_000 + n,
    volume_total_bytes: 1_073_741_824,
    access: { is_public: false },
    wrapped_key: wrappedKey,
  };
}

/** BatchWrite in 25s, several in flight, unprocessed items retried. */
export async function putItems(
  docs: DynamoDBDocumentClient,
  items: InstanceItem[],
  table = INSTANCES_TABLE,
): Promise<void> {
  const chunks: InstanceItem[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  await timedPool(chunks.length, 4, async (i) => {
    let requests = (chunks[i] ?? []).map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 10) throw new Error('BatchWrite: items still unprocessed after 10 attempts');
      const out = await docs.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
      requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
      if (requests.length) await sleep(50 * (attempt + 1));
    }
  });
}

// ---- HTTP ----

export interface Login {
  token: string;
  projectId: string;
}

export async function login(api: string, username: string, password: string): Promise<Login> {
  const res = await fetch(`${api}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: username, password, domain: { id: 'default' } } },
        },
        scope: { project: { name: username, domain: { id: 'default' } } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { token: { project: { id: string } } };
  return { token: res.headers.get('x-subject-token') ?? '', projectId: body.token.project.id };
}

export interface Reply {
  status: number;
  json: Record<string, unknown> | undefined;
  text: string;
}

export async function call(
  api: string,
  method: string,
  path: string,
  token?: string,
  body?: object,
): Promise<Reply> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['x-auth-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${api}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

// ---- figures ----

/** The machine's load averages: other work on a 2-core machine moves every figure. */
export function load(): string {
  return `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
}

/** Nearest-rank percentile (p in 0..100): with 5 samples, p90 is the largest. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

export const median = (xs: number[]) => percentile(xs, 50);
export const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
export const fixed = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
export const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '-';

/** One table row: the first cell left-aligned, the others right-aligned. */
export function row(cells: string[], widths: number[]): string {
  return cells
    .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
    .join('  ')
    .trimEnd();
}

/** Runs `count` calls of `fn` with `concurrency` of them in flight; resolves with each call's ms. */
export async function timedPool(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<{ ms: number[]; wallMs: number }> {
  const ms: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t = performance.now();
      await fn(i);
      ms.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ms, wallMs: performance.now() - t0 };
}
