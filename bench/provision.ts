// `npm run bench -- provision`: how long an instance takes from POST to ACTIVE/HEALTHY, per engine,
// set against the bare engine initialised and started by hand in the same run: the difference is
// what the control plane adds (API, workflow, compute host, guest agent, conductor).
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetExecutionHistoryCommand, ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { syncTree } from '../agent/engines/fs.ts';
import { parsePhases } from '../lib/phases.ts';
import { agentLogPath } from '../local/compute/records.ts';
import { localCredentials } from '../local/dynamodb.ts';
import { freePort } from '../local/ports.ts';
import {
  type BenchCloud,
  Cleanup,
  call,
  documentClient,
  dynamoClient,
  fixed,
  INSTANCES_TABLE,
  type Login,
  load,
  login,
  median,
  percentile,
  ratio,
  row,
  sleep,
  startBenchCloud,
  verdict,
} from './cloud.ts';
import { EventLoopStalls } from './event-loop.ts';
import { roundOrder as balancedOrder } from './interleaved.ts';

// A multiple of 6: the engines' balanced order (bench/interleaved.ts) repeats every 6 rounds.
const DEFAULT_RUNS = 12;
let RUNS = DEFAULT_RUNS;
// Both sides polled as often: often enough that the poll's granularity (half an interval on
// average) is small beside the goal (at 100 ms it was ~50 ms of every create's figure), seldom
// enough that the polls' own CPU (a GET through serverless-offline each) does not slow the create
// on a 2-core machine (at 25 ms the compute host's useradd took twice as long).
const POLL_MS = 50;
const BASELINE_POLL_MS = POLL_MS;
const CREATE_TIMEOUT_MS = 120_000;
const DELETE_TIMEOUT_MS = 90_000;
const BASELINE_TIMEOUT_MS = 60_000;
const GOAL_ADDED_S = 0.5;
/** Issue 10: isolation (user, volume, cgroups, rules) may add at most this to POST → ACTIVE. */
const GOAL_ISOLATION_S = 0.3;
const USER = { name: 'benchuser', password: 'Bench-pass-1' };

interface Engine {
  datastore: 'mysql' | 'postgresql' | 'redis';
  withUser: boolean;
  bare: string;
  baseline(cleanup: Cleanup): Promise<Baseline>;
}

interface Baseline {
  /** ms from the start of init until the engine accepts a connection. */
  totalMs: number;
  initMs: number;
}

/** One instance, ms after POST (undefined where the source could not be read). */
interface Provisioned {
  readyMs: number;
  postMs: number;
  deleteMs: number;
  launched?: number;
  agentUp?: number;
  prepareReceived?: number;
  guestHealthy?: number;
  prepareDone?: number;
  /** The compute host's launch, phase by phase (ms; bench/cloud.ts). */
  launch?: Map<string, number>;
  /** The guest's prepare, phase by phase (ms; the agent's "prepared" line). */
  prepare?: Map<string, number>;
  /** The workflow's LaunchServer step, phase by phase (ms; its "server launched" line). */
  launchStep?: Map<string, number>;
  /** The workflow's IssueCertificate step, its own ms. */
  certificateMs?: number;
  /** Each state of the create workflow: when it was entered and left (ms after POST). */
  states?: Map<string, { entered?: number; exited?: number }>;
}

// ---- the bare engines ----

const ENGINE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', TZ: 'UTC' };
const PG_BIN = '/usr/lib/postgresql/15/bin';

function account(user: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`no ${user} user on this machine`);
  return { uid: Number(uid), gid: Number(gid) };
}

async function ownedDir(path: string, user: string, mode: number): Promise<string> {
  await mkdir(path, { recursive: true });
  const { uid, gid } = account(user);
  await chown(path, uid, gid);
  await chmod(path, mode);
  return path;
}

function runAs(user: string, command: string, args: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(
      'runuser',
      ['-u', user, '--', command, ...args],
      { cwd: '/', env: ENGINE_ENV, timeout: BASELINE_TIMEOUT_MS, maxBuffer: 4 << 20 },
      (err, stdout, stderr) =>
        err
          ? fail(new Error(`${command}: ${err.message}\n${`${stderr}\n${stdout}`.trim().slice(-800)}`))
          : ok(),
    );
  });
}

/** A long-running engine in its own process group, its output in a log file in its dir. */
function startDetached(cleanup: Cleanup, command: string, args: string[], log: string) {
  const fd = openSync(log, 'a', 0o644);
  try {
    const child = spawn(command, args, {
      cwd: '/',
      env: ENGINE_ENV,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid) cleanup.tracked.groups.add(child.pid);
    let exited = '';
    child.once('exit', (code, sig) => {
      exited = `exited (${sig ?? `code ${code}`})`;
    });
    child.once('error', (err) => {
      exited = err.message;
    });
    return { pgid: child.pid ?? 0, exited: () => exited };
  } finally {
    closeSync(fd);
  }
}

function groupAlive(pgid: number): boolean {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** The polite signal to `target` (a pid, or the group), SIGKILL to the group after the grace time. */
async function stopGroup(pgid: number, target: number, signal: NodeJS.Signals, graceMs = 20_000) {
  if (!pgid) return;
  try {
    process.kill(target, signal);
  } catch {
    // already gone
  }
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // all gone
  }
  for (let i = 0; i < 40 && groupAlive(pgid); i++) await sleep(50);
}

async function untilAnswering(what: string, probe: () => Promise<void>, exited: () => string): Promise<void> {
  const deadline = Date.now() + BASELINE_TIMEOUT_MS;
  let last = '';
  for (;;) {
    if (exited()) throw new Error(`${what} ${exited()} before it answered${last}`);
    try {
      await probe();
      return;
    } catch (err) {
      last = ` (last error: ${err instanceof Error ? err.message : err})`;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not answer within ${BASELINE_TIMEOUT_MS} ms${last}`);
    await sleep(BASELINE_POLL_MS);
  }
}

async function mariadbBaseline(cleanup: Cleanup): Promise<Baseline> {
  const dir = await cleanup.tempDir('troveless-bench-bare-');
  await chmod(dir, 0o755);
  const data = await ownedDir(join(dir, 'data'), 'mysql', 0o750);
  const run = await ownedDir(join(dir, 'run'), 'mysql', 0o755);
  const port = await freePort();
  const t0 = performance.now();
  await runAs('mysql', 'mariadb-install-db', [
    '--no-defaults',
    `--datadir=${data}`,
    '--auth-root-authentication-method=socket',
    '--skip-test-db',
    // As the agent does (agent/engines/mariadb.ts): no sync per statement, the whole at the end.
    '--debug-no-sync',
  ]);
  await syncTree(data);
  const initMs = performance.now() - t0;
  const engine = startDetached(
    cleanup,
    '/usr/sbin/mariadbd',
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${join(run, 'mysqld.sock')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--user=mysql',
      '--innodb-buffer-pool-size=16M',
      '--innodb-log-file-size=8M',
      '--performance-schema=OFF',
      '--skip-grant-tables',
    ],
    join(dir, 'mariadbd.log'),
  );
  try {
    await untilAnswering(
      'mariadbd',
      async () => {
        const conn = await mysql.createConnection({
          host: '127.0.0.1',
          port,
          user: 'root',
          connectTimeout: 1000,
        });
        try {
          await conn.query('SELECT 1');
        } finally {
          conn.destroy();
        }
      },
      engine.exited,
    );
    return { totalMs: performance.now() - t0, initMs };
  } finally {
    await stopGroup(engine.pgid, -engine.pgid, 'SIGTERM');
  }
}

async function postgresqlBaseline(cleanup: Cleanup): Promise<Baseline> {
  const dir = await cleanup.tempDir('troveless-bench-bare-');
  await chmod(dir, 0o755);
  const data = await ownedDir(join(dir, 'data'), 'postgres', 0o700);
  const run = await ownedDir(join(dir, 'run'), 'postgres', 0o755);
  const port = await freePort();
  const t0 = performance.now();
  await runAs('postgres', join(PG_BIN, 'initdb'), ['--no-sync', '-D', data]);
  const initMs = performance.now() - t0;
  const engine = startDetached(
    cleanup,
    'runuser',
    ['-u', 'postgres', '--', join(PG_BIN, 'postgres'), '-D', data, '-p', String(port), '-k', run],
    join(dir, 'postgres.log'),
  );
  try {
    await untilAnswering(
      'postgres',
      async () => {
        const client = new pg.Client({
          host: '127.0.0.1',
          port,
          user: 'postgres',
          database: 'postgres',
          connectionTimeoutMillis: 1000,
        });
        client.on('error', () => {});
        try {
          await client.connect();
        } finally {
          await client.end().catch(() => {});
        }
      },
      engine.exited,
    );
    return { totalMs: performance.now() - t0, initMs };
  } finally {
    // SIGINT is PostgreSQL's fast shutdown, for the postmaster alone (backends take it as "cancel").
    const postmaster = Number.parseInt(
      (await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => '')) || '0',
      10,
    );
    await stopGroup(
      engine.pgid,
      postmaster > 0 ? postmaster : -engine.pgid,
      postmaster > 0 ? 'SIGINT' : 'SIGTERM',
    );
  }
}

async function redisBaseline(cleanup: Cleanup): Promise<Baseline> {
  const dir = await cleanup.tempDir('troveless-bench-bare-');
  await chmod(dir, 0o755);
  const data = await ownedDir(join(dir, 'data'), 'redis', 0o750);
  const port = await freePort();
  const t0 = performance.now();
  const engine = startDetached(
    cleanup,
    'runuser',
    [
      '-u',
      'redis',
      '--',
      '/usr/bin/redis-server',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      data,
    ],
    join(dir, 'redis.log'),
  );
  try {
    await untilAnswering(
      'redis-server',
      async () => {
        const client = new Redis({
          host: '127.0.0.1',
          port,
          lazyConnect: true,
          connectTimeout: 1000,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
        });
        client.on('error', () => {});
        try {
          await client.connect();
          await client.ping();
        } finally {
          client.disconnect();
        }
      },
      engine.exited,
    );
    return { totalMs: performance.now() - t0, initMs: 0 };
  } finally {
    await stopGroup(engine.pgid, -engine.pgid, 'SIGTERM');
  }
}

const ENGINES: Engine[] = [
  {
    datastore: 'mysql',
    withUser: true,
    bare: 'mariadb-install-db + mariadbd',
    baseline: mariadbBaseline,
  },
  { datastore: 'postgresql', withUser: true, bare: 'initdb + postgres', baseline: postgresqlBaseline },
  { datastore: 'redis', withUser: false, bare: 'redis-server', baseline: redisBaseline },
];

// ---- through the API ----

interface Probes {
  sfn: SFNClient;
  createMachineArn: string;
  docs: ReturnType<typeof documentClient>;
}

/**
 * A create this slow waited on something (a lost report comes back a minute later): the cloud's
 * logs and the guests' are kept past the bench's cleanup, which removes its state dirs.
 */
const SLOW_CREATE_MS = 10_000;

async function keepLogs(bench: BenchCloud, id: string, readyMs: number): Promise<void> {
  const dest = join(tmpdir(), `troveless-slow-create-${id}`);
  try {
    await mkdir(dest, { mode: 0o700 });
    await cp(join(bench.stateDir, 'logs'), join(dest, 'logs'), { recursive: true });
    await cp(join(bench.stateDir, 'compute', 'logs'), join(dest, 'guests'), { recursive: true });
    console.log(`  (instance ${id} took ${fixed(readyMs / 1000)} s: its cloud's logs are kept in ${dest})`);
  } catch (err) {
    console.log(`  (instance ${id} took ${fixed(readyMs / 1000)} s; its logs could not be kept: ${err})`);
  }
}

async function provisionOnce(bench: BenchCloud, admin: Login, engine: Engine, probes: Probes, n: number) {
  const { api } = bench;
  const base = `/v1.0/${admin.projectId}/instances`;
  const wall0 = Date.now();
  const t0 = performance.now();
  const created = await call(api, 'POST', base, admin.token, {
    instance: {
      name: `bench-${engine.datastore}-${n}`,
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: engine.datastore },
      ...(engine.withUser
        ? { databases: [{ name: 'benchdb' }], users: [{ ...USER, databases: [{ name: 'benchdb' }] }] }
        : {}),
    },
  });
  const postMs = performance.now() - t0;
  const id = (created.json?.instance as { id?: string } | undefined)?.id;
  if (created.status !== 200 || !id)
    throw new Error(`create ${engine.datastore}: ${created.status} ${created.text}`);

  let view: Record<string, unknown> | undefined;
  let readyMs = Number.NaN;
  for (let tick = 1; ; tick++) {
    const res = await call(api, 'GET', `${base}/${id}`, admin.token);
    view = res.json?.instance as Record<string, unknown> | undefined;
    if (view?.status === 'ACTIVE' && view.operating_status === 'HEALTHY') {
      readyMs = performance.now() - t0;
      // A warm-up (n = 0) is slow by design: cold starts.
      if (n > 0 && readyMs > SLOW_CREATE_MS) await keepLogs(bench, id, readyMs);
      break;
    }
    if (view?.status === 'ERROR') throw new Error(`instance ${id} failed: ${JSON.stringify(view.fault)}`);
    if (performance.now() - t0 > CREATE_TIMEOUT_MS)
      throw new Error(`instance ${id} not ACTIVE/HEALTHY after ${CREATE_TIMEOUT_MS / 1000} s: ${res.text}`);
    // Every 100 ms from the POST, however long a GET took.
    await sleep(Math.max(0, t0 + tick * POLL_MS - performance.now()));
  }

  // The breakdown, read while the guest still exists: its agent log and the heartbeat it sent.
  const at = (epochMs: number | undefined) => (epochMs === undefined ? undefined : epochMs - wall0);
  const result: Provisioned = { readyMs, postMs, deleteMs: Number.NaN };
  const serverId = typeof view?.server_id === 'string' ? view.server_id : undefined;
  if (serverId) {
    result.launch = bench.launches.get(serverId);
    const log = await readFile(agentLogPath(join(bench.stateDir, 'compute'), serverId), 'utf8').catch(
      () => '',
    );
    for (const line of log.split('\n')) {
      try {
        const entry = JSON.parse(line) as {
          time?: string;
          msg?: string;
          operation?: string;
          phases?: unknown;
        };
        if (entry.msg === 'guest agent started') result.agentUp = at(Date.parse(entry.time ?? ''));
        if (entry.msg === 'running' && entry.operation === 'prepare')
          result.prepareReceived ??= at(Date.parse(entry.time ?? ''));
        if (entry.msg === 'prepared' && typeof entry.phases === 'string')
          result.prepare = parsePhases(entry.phases);
      } catch {
        // not a log line of the agent's own
      }
    }
  }
  // The launch step's own phases, from the functions' log: its call to the compute host beside
  // the host's own time says what the call itself adds.
  const offlineLog = await readFile(join(bench.stateDir, 'logs', 'offline.log'), 'utf8').catch(() => '');
  for (const line of offlineLog.split('\n')) {
    if (!line.includes('"server launched"') || !line.includes(id)) continue;
    try {
      const entry = JSON.parse(line.slice(line.indexOf('{'))) as { instance_id?: string; phases?: unknown };
      if (entry.instance_id === id && typeof entry.phases === 'string')
        result.launchStep = parsePhases(entry.phases);
    } catch {
      // not the step's own line
    }
  }
  const item = await probes.docs.send(
    new GetCommand({ TableName: INSTANCES_TABLE, Key: { project_id: admin.projectId, id } }),
  );
  const seen = item.Item?.last_seen_heartbeat;
  if (typeof seen === 'number') result.guestHealthy = at(seen * 1000);

  const tDelete = performance.now();
  const del = await call(api, 'DELETE', `${base}/${id}`, admin.token);
  if (del.status !== 202) throw new Error(`delete ${id}: ${del.status} ${del.text}`);
  for (let tick = 1; ; tick++) {
    const res = await call(api, 'GET', `${base}/${id}`, admin.token);
    if (res.status === 404) break;
    if (performance.now() - tDelete > DELETE_TIMEOUT_MS)
      throw new Error(`instance ${id} still there ${DELETE_TIMEOUT_MS / 1000} s after DELETE: ${res.text}`);
    await sleep(Math.max(0, tDelete + tick * POLL_MS - performance.now()));
  }
  result.deleteMs = performance.now() - tDelete;

  // The create workflow's own history (finished by now): when the server was up, when prepare came back.
  try {
    const executionArn = `${probes.createMachineArn.replace(':stateMachine:', ':execution:')}:${id}`;
    const history = await probes.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
    let issuing: number | undefined;
    result.states = new Map();
    for (const e of history.events ?? []) {
      const name = e.stateExitedEventDetails?.name;
      const when = e.timestamp ? at(e.timestamp.getTime()) : undefined;
      const entered = e.stateEnteredEventDetails?.name;
      if (entered && when !== undefined)
        result.states.set(entered, { ...result.states.get(entered), entered: when });
      if (name && when !== undefined) result.states.set(name, { ...result.states.get(name), exited: when });
      if (e.stateEnteredEventDetails?.name === 'IssueCertificate') issuing = when;
      if (name === 'IssueCertificate' && when !== undefined && issuing !== undefined)
        result.certificateMs = when - issuing;
      if (name === 'LaunchServer') result.launched = when;
      if (name === 'Prepare') result.prepareDone = when;
    }
  } catch {
    // no breakdown from the workflow: the figures above still stand
  }
  return result;
}

// ---- main ----

/** A cloud measured in this run: isolating (the default as root) or not. */
interface Measured {
  bench: BenchCloud;
  admin: Login;
  probes: Probes;
}

async function measured(cleanup: Cleanup, name: string, isolation: boolean): Promise<Measured> {
  // The compute host (a child of this process) gets the switch in its environment at its spawn;
  // restored at once, so the other cloud, started before or after, keeps isolating.
  const before = process.env.TROVELESS_COMPUTE_ISOLATION;
  if (!isolation) process.env.TROVELESS_COMPUTE_ISOLATION = 'off';
  let bench: BenchCloud;
  try {
    bench = await startBenchCloud(cleanup, name);
  } finally {
    if (before === undefined) delete process.env.TROVELESS_COMPUTE_ISOLATION;
    else process.env.TROVELESS_COMPUTE_ISOLATION = before;
  }
  const admin = await login(bench.api, 'admin', 'admin');
  const sfn = new SFNClient({
    endpoint: bench.cloud.endpoints.stepfunctions,
    region: 'us-east-1',
    credentials: localCredentials,
  });
  const machines = await sfn.send(new ListStateMachinesCommand({}));
  const createMachineArn =
    machines.stateMachines?.find((m) => m.name?.endsWith('-instance-create'))?.stateMachineArn ?? '';
  const probes: Probes = { sfn, createMachineArn, docs: documentClient(dynamoClient(bench.cloud)) };
  console.log(
    `  local cloud ${isolation ? 'with' : 'without'} isolation ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`,
  );
  return { bench, admin, probes };
}

type Step = 'isolated' | 'plain' | 'bare';

/**
 * Round `i`'s order of the three measurements: every step goes first, second and last equally
 * often over six rounds, and isolated before plain as often as after, so neither gets the warmer
 * page cache or the quieter machine more often.
 */
export function roundOrder(i: number): Step[] {
  const steps: Step[] = ['isolated', 'plain', 'bare'];
  const shift = i % 3;
  const rotated = [...steps.slice(shift), ...steps.slice(0, shift)];
  return i % 6 >= 3 ? rotated.reverse() : rotated;
}

interface EngineResults {
  api: Provisioned[];
  plain: Provisioned[];
  bare: Baseline[];
}

export async function run(args: string[]): Promise<number> {
  // `--runs N` for a quick look; the figures the brief asks for are the default twelve.
  const runs = Number(args[args.indexOf('--runs') + 1]);
  RUNS = args.includes('--runs') && Number.isInteger(runs) && runs > 0 ? runs : DEFAULT_RUNS;
  const cleanup = new Cleanup();
  const clouds: BenchCloud[] = [];
  let ok = true;
  console.log(
    `bench provision: ${RUNS} instances per engine through the API (flavor 7, volume 1 GB) on a local cloud ` +
      'with isolation and as many on one without (TROVELESS_COMPUTE_ISOLATION=off), both running, ' +
      `interleaved with the bare engine ${RUNS} times each, the engines in a balanced order round by round; one at a time, each deleted before the next; ` +
      `node ${process.version}`,
  );
  try {
    const isolated = await measured(cleanup, 'prov', true);
    clouds.push(isolated.bench);
    const plain = await measured(cleanup, 'noiso', false);
    clouds.push(plain.bench);

    // Not measured: one instance of each engine in each cloud. The first creates start the
    // functions' workers (Lambda cold starts), and for about a minute after, while the clouds'
    // processes warm (DynamoDB Local's JVM, the handlers' code), every step runs slower: with the
    // engines measured one after the other, whichever came first took 0.1-0.2 s more of the
    // control plane's part (mysql 0.69 s first, 0.46 s last; redis 0.57 s first, 0.46 s last).
    for (const engine of ENGINES)
      for (const [label, m] of [
        ['isolated', isolated],
        ['plain', plain],
      ] as const) {
        const w = await provisionOnce(m.bench, m.admin, engine, m.probes, 0);
        console.log(
          `  warm-up ${engine.datastore} instance, ${label} (not counted): ACTIVE/HEALTHY in ${fixed(w.readyMs / 1000)} s`,
        );
      }

    const results = new Map<string, EngineResults>(
      ENGINES.map((engine) => [engine.datastore, { api: [], plain: [], bare: [] }]),
    );
    // The clouds run in this process (all but their compute hosts, DynamoDB, S3 and functions):
    // what holds up its loop holds up their workflows and queues. The bare engines' rounds and the
    // deletes are in the count too.
    const stalls = new EventLoopStalls().start();
    // Round by round, the engines in a balanced order: each is measured as often early and late in
    // the run, and after each other engine, so what is left of the warm-up favours none.
    for (let i = 1; i <= RUNS; i++) {
      for (const e of balancedOrder(i, ENGINES.length)) {
        const engine = ENGINES[e];
        const mine = engine && results.get(engine.datastore);
        if (!engine || !mine) throw new Error(`round ${i}: no engine at place ${e}`);
        const said: string[] = [];
        for (const step of roundOrder(i)) {
          if (step === 'bare') {
            const b = await engine.baseline(cleanup);
            mine.bare.push(b);
            said.push(`bare ${fixed(b.totalMs / 1000)} s`);
            continue;
          }
          const m = step === 'isolated' ? isolated : plain;
          const p = await provisionOnce(m.bench, m.admin, engine, m.probes, i);
          (step === 'isolated' ? mine.api : mine.plain).push(p);
          said.push(`${step} ${fixed(p.readyMs / 1000)} s (delete ${fixed(p.deleteMs / 1000)} s)`);
        }
        console.log(`  ${engine.datastore} ${i}/${RUNS}: ${said.join(', ')}`);
      }
    }
    stalls.stop();
    printReport(results);
    printIsolation(results);
    console.log(
      `this process's event loop (the local clouds') over the measured rounds: ${stalls.summary()}`,
    );
  } catch (err) {
    console.error(`bench provision failed: ${err instanceof Error ? err.message : err}`);
    ok = false;
  } finally {
    for (const bench of clouds)
      await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
    const clean = await cleanup.finish('bench provision');
    console.log(
      clean ? '\nno process left running' : '\nSOME PROCESSES WERE LEFT RUNNING (killed, see above)',
    );
    ok = ok && clean;
  }
  return ok ? 0 : 1;
}

/**
 * The boot timeout (TROVELESS_AGENT_BOOT_TIMEOUT): how long Prepare waits for a new guest's first
 * heartbeat before it fails the build. Set beside what this run measured from LaunchServer to the
 * agent's first heartbeat (it sends one as it starts, then every report_interval).
 */
function printBootTimeout(results: Map<string, { api: Provisioned[] }>): void {
  const timeouts = createRequire(import.meta.url)('../serverless/timeouts.cjs')() as {
    heartbeat: { prepare: number };
  };
  const starts = [...results.values()]
    .flatMap((r) => r.api)
    .map((p) => (p.agentUp === undefined || p.launched === undefined ? undefined : p.agentUp - p.launched))
    .filter((x): x is number => x !== undefined && Number.isFinite(x));
  const measured = starts.length
    ? `measured launch to agent start: median ${fixed(median(starts) / 1000)} s, worst ${fixed(Math.max(...starts) / 1000)} s`
    : 'agent start not measured in this run';
  console.log(
    `boot timeout (TROVELESS_AGENT_BOOT_TIMEOUT, default 300 s for an EC2 boot): ${timeouts.heartbeat.prepare} s in force; ${measured}`,
  );
}

/**
 * What isolation (OS user, volume, cgroups, firewall rules) adds to POST → ACTIVE per engine:
 * the same creates on a cloud whose compute host does not isolate, measured in alternation with
 * the isolated ones in the same run; then where the difference goes, phase by phase.
 */
function printIsolation(results: Map<string, EngineResults>): void {
  const w = [12, 9, 9, 9, 9, 10, 6, 11, 11, 22];
  console.log('');
  console.log(
    row(
      [
        'isolation',
        'on p50',
        'on p90',
        'off p50',
        'off p90',
        'added p50',
        'ratio',
        'paired p50',
        'paired p90',
        `goal: adds <= ${GOAL_ISOLATION_S} s`,
      ],
      w,
    ),
  );
  for (const [name, r] of results) {
    const on = r.api.map((p) => p.readyMs);
    const off = r.plain.map((p) => p.readyMs);
    // Each round's isolated create minus its plain one, made a few seconds apart: the machine's
    // load drifts less between the two than across the run.
    const paired = on.map((ms, i) => ms - (off[i] ?? Number.NaN));
    const added = (ms: number) => `${fixed(ms / 1000)} s`;
    console.log(
      comparisonRow(name, on, off, () => median(paired) / 1000 <= GOAL_ISOLATION_S, w, [
        added(median(paired)),
        added(percentile(paired, 90)),
      ]),
    );
  }
  console.log(
    `(POST to ACTIVE/HEALTHY, ${RUNS} creates each way per engine, on and off alternating; paired: each ` +
      "round's isolated create minus its plain one, the verdict on their median)",
  );

  // Where it goes: each phase's median with isolation, without, and the difference (ms).
  const phases: [string, (p: Provisioned) => number | undefined][] = [
    ['host: launch', (p) => p.launch?.get('launch')],
    ['  isolation', (p) => p.launch?.get('isolation')],
    ['    user', (p) => p.launch?.get('user')],
    ['    nft rules', (p) => p.launch?.get('rules')],
    ['    volume file', (p) => p.launch?.get('file')],
    ['    mkfs', (p) => p.launch?.get('mkfs')],
    ['    mount', (p) => p.launch?.get('mount')],
    ['    cgroups', (p) => p.launch?.get('cgroups')],
    ['  address', (p) => p.launch?.get('address')],
    ['  agent spawn', (p) => p.launch?.get('agent')],
    ['certificate', (p) => p.certificateMs],
    ['agent start', (p) => since(p.agentUp, p.launched)],
    ['prepare: init', (p) => p.prepare?.get('init')],
    ['  tls files', (p) => p.prepare?.get('tls')],
    ['  configure', (p) => p.prepare?.get('configure')],
    ['  start', (p) => p.prepare?.get('start')],
    ['  provision', (p) => p.prepare?.get('provision')],
    ['engine up', (p) => since(p.guestHealthy, p.prepareReceived)],
    ['POST to ACTIVE', (p) => p.readyMs],
  ];
  const names = [...results.keys()];
  const pw = [16, ...names.map(() => 22)];
  const ms = (xs: (number | undefined)[]) => {
    const got = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
    return got.length ? median(got) : Number.NaN;
  };
  console.log("\nwhere isolation's time goes (medians, ms: on / off / added)");
  console.log(row(['phase', ...names], pw));
  for (const [label, f] of phases) {
    const cells = names.map((name) => {
      const r = results.get(name);
      const on = ms(r?.api.map(f) ?? []);
      const off = ms(r?.plain.map(f) ?? []);
      const n = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
      const diff = Number.isFinite(on) ? (Number.isFinite(off) ? on - off : on) : Number.NaN;
      return `${n(on)} / ${n(off)} / ${Number.isFinite(diff) ? `${diff >= 0 ? '+' : ''}${diff.toFixed(0)}` : '-'}`;
    });
    console.log(row([label, ...cells], pw));
  }
  console.log(
    [
      "  host: launch   the compute host's launch, all of it (inside the workflow's LaunchServer step)",
      '  isolation      its wall time; the steps below it run side by side (user, then rules; file, mkfs, mount;',
      "                 cgroups), so each one's time also holds its wait for the others on the event loop",
      "  certificate    the workflow's IssueCertificate step (both clouds issue one)",
      '  agent start    LaunchServer done until the agent logs "guest agent started"',
      "  prepare: ...   the guest's prepare, its own phases (init: the engine's data dir; start: until it answers)",
      '  engine up      prepare received until the "healthy" heartbeat',
    ].join('\n'),
  );

  const volumes = [...results.values()]
    .flatMap((r) => r.api)
    .map((p) => ['file', 'mkfs', 'mount'].map((k) => p.launch?.get(k)))
    .filter((xs): xs is number[] => xs.every((x) => x !== undefined))
    .map((xs) => xs.reduce((a, b) => a + b, 0));
  console.log(
    volumes.length
      ? `volume setup per create (sparse file + mkfs + loop mount), ${volumes.length} creates: ` +
          `p50 ${median(volumes)} ms, p90 ${percentile(volumes, 90)} ms`
      : 'volume setup: none measured (the first cloud did not isolate: not root on Linux?)',
  );
}

/** One engine's row: `a` and `b` (ms) at p50 and p90, what `a` adds at p50, the ratio, the verdict. */
function comparisonRow(
  name: string,
  a: number[],
  b: number[],
  meets: (addedSeconds: number) => boolean,
  widths: number[],
  /** Cells before the verdict. */
  more: string[] = [],
): string {
  const s = (ms: number) => `${fixed(ms / 1000)} s`;
  const added = median(a) - median(b);
  return row(
    [
      name,
      s(median(a)),
      s(percentile(a, 90)),
      s(median(b)),
      s(percentile(b, 90)),
      s(added),
      ratio(median(a), median(b)),
      ...more,
      verdict(meets(added / 1000)),
    ],
    widths,
  );
}

const since = (later: number | undefined, earlier: number | undefined) =>
  later === undefined || earlier === undefined ? undefined : later - earlier;

function printReport(results: Map<string, EngineResults>): void {
  const s = (ms: number) => `${fixed(ms / 1000)} s`;
  const w = [12, 10, 10, 10, 10, 11, 7, 22];
  console.log('');
  console.log(
    row(
      [
        'POST to ACTIVE',
        'API p50',
        'API p90',
        'bare p50',
        'bare p90',
        'added p50',
        'ratio',
        `goal: adds < ${GOAL_ADDED_S} s`,
      ],
      w,
    ),
  );
  for (const [name, r] of results) {
    const api = r.api.map((p) => p.readyMs);
    const bare = r.bare.map((b) => b.totalMs);
    console.log(comparisonRow(name, api, bare, (added) => added < GOAL_ADDED_S, w));
  }
  console.log(
    `(p90 is the nearest rank of ${RUNS}, i.e. the slowest; the API is polled every ${POLL_MS} ms, the bare ` +
      `engine every ${BASELINE_POLL_MS} ms)`,
  );
  console.log('bare engine steps (medians): mariadb-install-db + mariadbd; initdb + postgres; redis-server');
  for (const [name, r] of results) {
    const init = r.bare.map((b) => b.initMs);
    const start = r.bare.map((b) => b.totalMs - b.initMs);
    console.log(`  ${name.padEnd(11)} init ${s(median(init))}, start to first answer ${s(median(start))}`);
  }

  // Where the time goes, medians of each step's own duration, from the workflow history, the agent's
  // log and the heartbeat the guest sent (same machine clock).
  const b = [12, 7, 7, 7, 8, 10, 7, 7, 8, 7];
  console.log("\nbreakdown per instance (medians, seconds; each column is the step's own time)");
  console.log(
    row(
      ['engine', 'POST', 'launch', 'agent', 'prepare', 'engine up', 'report', 'ACTIVE', 'outside', 'delete'],
      b,
    ),
  );
  for (const [name, r] of results) {
    const step = (f: (p: Provisioned) => number | undefined) => {
      const xs = r.api.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
      return xs.length ? fixed(median(xs) / 1000) : '-';
    };
    console.log(
      row(
        [
          name,
          step((p) => p.postMs),
          step((p) => (p.launched === undefined ? undefined : p.launched - p.postMs)),
          step((p) =>
            p.agentUp === undefined || p.launched === undefined ? undefined : p.agentUp - p.launched,
          ),
          step((p) =>
            p.prepareReceived === undefined || p.agentUp === undefined
              ? undefined
              : p.prepareReceived - p.agentUp,
          ),
          step((p) =>
            p.guestHealthy === undefined || p.prepareReceived === undefined
              ? undefined
              : p.guestHealthy - p.prepareReceived,
          ),
          step((p) =>
            p.prepareDone === undefined || p.guestHealthy === undefined
              ? undefined
              : p.prepareDone - p.guestHealthy,
          ),
          step((p) => (p.prepareDone === undefined ? undefined : p.readyMs - p.prepareDone)),
          step((p) =>
            p.guestHealthy === undefined || p.prepareReceived === undefined
              ? undefined
              : p.readyMs - (p.guestHealthy - p.prepareReceived),
          ),
          step((p) => p.deleteMs),
        ],
        b,
      ),
    );
  }
  console.log(
    [
      '  POST       the create request itself (checks, item and quota write, workflow start)',
      '  launch     workflow: guest queue, then the compute host starts the agent process',
      '  agent      agent process start (node + tsx + SDK) until it logs "guest agent started"',
      '  prepare    until the agent takes the prepare order from its queue (= its first heartbeat, "building")',
      '  engine up  the guest: init, start, databases and users, until it sends the "healthy" heartbeat',
      '  report     that heartbeat and the prepare result through the conductor back to the workflow',
      `  ACTIVE     MarkReady until a GET shows ACTIVE/HEALTHY (poll every ${POLL_MS} ms)`,
      '  outside    POST to ACTIVE minus "engine up": what the control plane itself took (compare the goal)',
      '  delete     DELETE until GET answers 404 (not part of the comparison)',
    ].join('\n'),
  );
  // Issue 16's goal is on "outside": the total minus the guest's engine work (the first table's
  // verdict is on the total minus the bare engine, which also counts what the guest's engine
  // start does beyond the bare one's: TLS files, its own user, databases and users).
  const outside = (r: EngineResults) =>
    r.api
      .map((p) =>
        p.guestHealthy === undefined || p.prepareReceived === undefined
          ? undefined
          : p.readyMs - (p.guestHealthy - p.prepareReceived),
      )
      .filter((x): x is number => x !== undefined && Number.isFinite(x));
  console.log(
    `the control plane's part (outside, p50), goal < ${GOAL_ADDED_S} s: ` +
      [...results]
        .map(([name, r]) => {
          const xs = outside(r);
          if (!xs.length) return `${name} - (not measured)`;
          const s = median(xs) / 1000;
          return `${name} ${fixed(s)} s ${verdict(s < GOAL_ADDED_S)}`;
        })
        .join(', '),
  );
  printWorkflowSteps(results);
  printBootTimeout(results);
  console.log(`(${load()})`);
}

/** The sum of these phases, when every one of them was logged. */
function sumOf(phases: Map<string, number> | undefined, names: string[]): number | undefined {
  const xs = names.map((n) => phases?.get(n));
  return xs.every((x) => x !== undefined) ? xs.reduce((a: number, b) => a + (b ?? 0), 0) : undefined;
}

/**
 * The create workflow's own steps, each from its history (entered to left), and the waits between
 * them: where the control plane's part goes, step by step (medians, ms).
 */
function printWorkflowSteps(results: Map<string, EngineResults>): void {
  const state = (p: Provisioned, name: string) => p.states?.get(name);
  const own = (name: string) => (p: Provisioned) => since(state(p, name)?.exited, state(p, name)?.entered);
  const steps: [string, (p: Provisioned) => number | undefined][] = [
    ['POST answered', (p) => p.postMs],
    ['to 1st state', (p) => state(p, 'CreateGuestQueue')?.entered],
    ['BuildServer (both)', own('BuildServer')],
    ['CreateGuestQueue', own('CreateGuestQueue')],
    ['LaunchServer', own('LaunchServer')],
    ['  read, key, queue', (p) => sumOf(p.launchStep, ['read', 'key', 'conductor-queue'])],
    ['  call to the host', (p) => p.launchStep?.get('launch')],
    ['    host launch', (p) => p.launch?.get('launch')],
    ['  record', (p) => p.launchStep?.get('record')],
    ['CreatePort (beside)', own('CreatePort')],
    ['IssueCertificate', own('IssueCertificate')],
    // Negative: the certificate was issued before the server had launched (it runs beside it).
    ['  left - launch left', (p) => since(state(p, 'IssueCertificate')?.exited, p.launched)],
    ['Prepare (all)', own('Prepare')],
    ['  sent to started', (p) => since(p.agentUp, state(p, 'Prepare')?.entered)],
    ['  healthy to left', (p) => since(state(p, 'Prepare')?.exited, p.guestHealthy)],
    ['MarkReady', own('MarkReady')],
    ['left to GET', (p) => since(p.readyMs, state(p, 'MarkReady')?.exited)],
  ];
  const names = [...results.keys()];
  const w = [20, ...names.map(() => 12)];
  console.log('\nworkflow steps (medians, ms; own time of each state, from its history)');
  console.log(row(['step', ...names], w));
  for (const [label, f] of steps) {
    const cells = names.map((name) => {
      const xs = (results.get(name)?.api ?? [])
        .map(f)
        .filter((x): x is number => x !== undefined && Number.isFinite(x));
      return xs.length ? median(xs).toFixed(0) : '-';
    });
    console.log(row([label, ...cells], w));
  }
}
