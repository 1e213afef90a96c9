// `npm run bench -- start`: how long `npm start` takes to be ready (cold and warm), set against the
// bare DynamoDB Local JVM it contains, and how much memory the local cloud holds at rest.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { startDynamoDb } from '../local/dynamodb.ts';
import { freePort } from '../local/ports.ts';
import { ProcessGroup } from '../local/processes.ts';
import { withTimeout } from '../local/wait.ts';

const ROOT = resolve(import.meta.dirname, '..');
const RUNS = 3;
const READY_TIMEOUT_MS = 120_000;
const EXIT_TIMEOUT_MS = 60_000;
const REST_MS = 5_000;
const GOAL_READY_S = 15;
const GOAL_MEMORY_MB = 700;
const READY_LINE = /Troveless local cloud ready in ([\d.]+) s/;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- /proc: which processes a run started, and what they hold ----

interface Proc {
  pid: number;
  ppid: number;
  pgrp: number;
  /** Start time in clock ticks since boot: with the pid, it names a process even across pid reuse. */
  start: string;
  state: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields after its closing one do not.
    const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { pid, state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), start: f[19] ?? '' };
  } catch {
    return undefined;
  }
}

function allProcs(): Proc[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is Proc => p !== undefined);
}

/** The process and all its descendants; detached children (own groups) keep their parent link. */
function tree(root: number): Proc[] {
  const procs = allProcs();
  const out = procs.filter((p) => p.pid === root);
  for (const parent of out) out.push(...procs.filter((p) => p.ppid === parent.pid));
  return out;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function kbField(text: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** What one run started: its own process group, what it spawned, and the groups named in pids.json. */
interface Track {
  root?: number;
  pidFile: string;
  seen: Map<number, string>;
  groups: Set<number>;
  names: Map<number, string>;
}

const newTrack = (pidFile: string, root?: number): Track => ({
  root,
  pidFile,
  seen: new Map(),
  groups: new Set(root ? [root] : []),
  names: new Map(),
});

// pids.json is emptied on a clean stop, so it is read while the run is still up.
function remember(t: Track): void {
  if (t.root) for (const p of tree(t.root)) t.seen.set(p.pid, p.start);
  let entries: { name?: string; pid?: number }[] = [];
  try {
    entries = JSON.parse(readFileSync(t.pidFile, 'utf8'));
  } catch {
    // not written yet, or caught mid-write
  }
  for (const { name, pid } of entries) {
    if (!pid) continue;
    t.groups.add(pid);
    if (name) t.names.set(pid, name);
    const p = readProc(pid);
    if (p) t.seen.set(pid, p.start);
  }
}

function leftovers(t: Track): Proc[] {
  return allProcs().filter(
    (p) =>
      p.state !== 'Z' && p.pid !== process.pid && (t.seen.get(p.pid) === p.start || t.groups.has(p.pgrp)),
  );
}

function killAll(t: Track): Proc[] {
  remember(t);
  const left = leftovers(t);
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return left;
}

/** After a stop: give dying processes a moment, then report and kill whatever is still there. */
async function checkNothingLeft(label: string, t: Track): Promise<boolean> {
  for (let i = 0; i < 30 && leftovers(t).length; i++) await sleep(100);
  const left = killAll(t);
  for (const p of left)
    console.log(`  LEFT RUNNING after ${label}: pid ${p.pid} ${describe(p.pid, t)} (killed)`);
  return left.length === 0;
}

function describe(pid: number, t: Track): string {
  const name = t.names.get(pid);
  if (pid === t.root) return 'node local/start.ts (the npm start process)';
  const argv = readText(`/proc/${pid}/cmdline`).split('\0').filter(Boolean);
  if (argv.some((a) => a.endsWith('local/start.ts')))
    return 'node local/start.ts (SQS, Step Functions, pollers)';
  // The program and the script it runs, without flags or paths: "java DynamoDBLocal.jar".
  const script = argv.slice(1).find((a) => /\.(m?js|cjs|ts|jar)$/.test(a) && !a.startsWith('-'));
  const next = script ? argv[argv.indexOf(script) + 1] : undefined;
  const words = [basename(argv[0] ?? '?'), script && basename(script), next && !next.startsWith('-') && next];
  const text = words.filter(Boolean).join(' ');
  return name ? `${text} [${name}]` : text;
}

// ---- runs ----

interface CloudRun {
  track: Track;
  exited: Promise<void>;
  seconds: number;
  /** The figure start.ts prints itself; the difference to `seconds` is tsx's own start. */
  reported: number;
}

async function startCloud(stateDir: string, wipe: boolean, live: Set<Track>): Promise<CloudRun> {
  const names = ['API', 'LAMBDA', 'DYNAMODB', 'SQS', 'S3', 'STEPFUNCTIONS', 'COMPUTE'];
  const env: NodeJS.ProcessEnv = { ...process.env, TROVELESS_STATE_DIR: stateDir, FORCE_COLOR: '0' };
  for (const n of names) env[`TROVELESS_${n}_PORT`] = String(await freePort());
  // Measure the embedded servers, never an external endpoint a developer's shell may point at.
  for (const n of ['SQS', 'DYNAMODB', 'S3']) delete env[`TROVELESS_${n}_ENDPOINT`];

  const t0 = performance.now();
  // detached: the run leads its own group, so SIGINT reaches tsx and its node as Ctrl-C would.
  // Exactly what `npm start` runs (package.json), minus npm itself.
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts', ...(wipe ? ['--wipe'] : [])], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const track = newTrack(join(stateDir, 'pids.json'), child.pid);
  live.add(track);
  const tail: string[] = [];
  const keep = (line: string) => {
    if (tail.push(line) > 20) tail.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep);
  const exited = new Promise<void>((ok) => {
    child.once('exit', () => ok());
    child.once('error', () => ok());
  });
  const ready = new Promise<number>((ok, fail) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      const m = READY_LINE.exec(line);
      if (m) ok(Number(m[1]));
    });
    child.once('exit', (code) => fail(new Error(`local/start.ts exited (${code}) before it was ready`)));
    child.once('error', fail);
  });
  try {
    const reported = await withTimeout('ready line', ready, READY_TIMEOUT_MS);
    const seconds = (performance.now() - t0) / 1000;
    remember(track);
    return { track, exited, seconds, reported };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`${msg}\n--- last output ---\n${tail.join('\n')}`);
  }
}

/** Ctrl-C, wait for the exit, then make sure nothing it started is left. */
async function stopCloud(run: CloudRun, label: string, live: Set<Track>): Promise<boolean> {
  remember(run.track);
  try {
    // Never signal group 0: that would be the bench's own group.
    if (run.track.root) process.kill(-run.track.root, 'SIGINT');
  } catch {
    // already gone: the leftover check below says what remains
  }
  let clean = true;
  try {
    await withTimeout(`${label}: exit after SIGINT`, run.exited, EXIT_TIMEOUT_MS);
  } catch (err) {
    console.log(`  ${err instanceof Error ? err.message : err}; killing it`);
    clean = false;
  }
  clean = (await checkNothingLeft(label, run.track)) && clean;
  live.delete(run.track);
  return clean;
}

async function bareDynamoDb(live: Set<Track>, temps: string[]): Promise<{ seconds: number; clean: boolean }> {
  const dir = await mkdtemp(join(tmpdir(), 'troveless-bench-ddb-'));
  temps.push(dir);
  const procs = new ProcessGroup(join(dir, 'pids.json'));
  const track = newTrack(join(dir, 'pids.json'));
  live.add(track);
  let seconds = Number.NaN;
  let clean = false;
  try {
    const port = await freePort();
    const t0 = performance.now();
    // local/dynamodb.ts itself starts it: the same jar, JVM flags and ListTables probe as the cloud.
    await withTimeout(
      'bare DynamoDB Local',
      startDynamoDb(procs, { port, dataDir: join(dir, 'db'), logDir: join(dir, 'logs') }),
      READY_TIMEOUT_MS,
    );
    seconds = (performance.now() - t0) / 1000;
  } finally {
    remember(track);
    await procs.stopAll();
    clean = await checkNothingLeft('bare DynamoDB Local', track);
    live.delete(track);
  }
  return { seconds, clean };
}

interface Memory {
  rows: { pid: number; name: string; rssKb: number; pssKb?: number }[];
  rssKb: number;
  pssKb?: number;
}

function memoryAtRest(t: Track): Memory {
  const rows = (t.root ? tree(t.root) : []).map((p) => {
    const rssKb = kbField(readText(`/proc/${p.pid}/status`), 'VmRSS') ?? 0;
    const pssKb = kbField(readText(`/proc/${p.pid}/smaps_rollup`), 'Pss');
    return { pid: p.pid, name: describe(p.pid, t), rssKb, pssKb };
  });
  const pssKnown = rows.every((r) => r.pssKb !== undefined);
  return {
    rows,
    rssKb: rows.reduce((s, r) => s + r.rssKb, 0),
    pssKb: pssKnown ? rows.reduce((s, r) => s + (r.pssKb ?? 0), 0) : undefined,
  };
}

// ---- report ----

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const secs = (x: number) => `${x.toFixed(2)} s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
const row = (cells: string[], widths: number[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');

function printReport(cold: number[], warm: number[], bare: number[], mem: Memory): void {
  const w = [34, 9, 9, 9, 9, 18];
  const line = (label: string, xs: number[], goal: string) =>
    console.log(row([label, ...xs.map(secs), secs(median(xs)), goal], w));
  const readyGoal = (xs: number[]) => `< ${GOAL_READY_S} s  ${verdict(median(xs) < GOAL_READY_S)}`;
  console.log('');
  console.log(row(['start to ready', 'run 1', 'run 2', 'run 3', 'median', 'goal'], w));
  line('cold (--wipe, fresh state dir)', cold, readyGoal(cold));
  line('warm (state kept)', warm, readyGoal(warm));
  line('bare DynamoDB Local (ListTables)', bare, '');
  const ratio = (xs: number[]) => `${(median(xs) / median(bare)).toFixed(1)}x`;
  console.log(row(['ratio cold / bare DynamoDB', '', '', '', ratio(cold), ''], w));
  console.log(row(['ratio warm / bare DynamoDB', '', '', '', ratio(warm), ''], w));

  const m = [8, 58, 10, 10];
  console.log(`\nmemory at rest (warm start, ${REST_MS / 1000} s idle), ${mem.rows.length} processes`);
  console.log(row(['pid', 'process'.padEnd(m[1] ?? 0), 'RSS', 'PSS'], m));
  for (const r of mem.rows)
    console.log(row([String(r.pid), r.name.padEnd(m[1] ?? 0), mb(r.rssKb), r.pssKb ? mb(r.pssKb) : '-'], m));
  const goal = (kb: number) => `goal < ${GOAL_MEMORY_MB} MB  ${verdict(kb / 1024 < GOAL_MEMORY_MB)}`;
  console.log(
    row(['total', 'RSS (counts shared pages in each process)'.padEnd(m[1] ?? 0), mb(mem.rssKb), ''], m),
  );
  console.log(`${''.padEnd(m[0] ?? 0)}  ${goal(mem.rssKb)} (RSS)`);
  if (mem.pssKb !== undefined) {
    console.log(row(['total', 'PSS (shared pages split)'.padEnd(m[1] ?? 0), '', mb(mem.pssKb)], m));
    console.log(`${''.padEnd(m[0] ?? 0)}  ${goal(mem.pssKb)} (PSS)`);
  }
}

// ---- main ----

export async function run(_args: string[]): Promise<number> {
  const live = new Set<Track>();
  const temps: string[] = [];
  let clean = true;
  // Ctrl-C on the bench: the runs lead their own groups and would not get it, so stop them here.
  const onSignal = () => {
    for (const t of live) killAll(t);
    for (const d of temps) rmSync(d, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const stateDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'troveless-bench-state-'));
    temps.push(dir);
    return dir;
  };
  console.log(
    `bench start: ${RUNS} runs each, node ${process.version}, timeouts ${READY_TIMEOUT_MS / 1000} s`,
  );

  try {
    const cold: number[] = [];
    let dir = '';
    for (let i = 1; i <= RUNS; i++) {
      dir = await stateDir();
      const r = await startCloud(dir, true, live);
      console.log(`  cold ${i}/${RUNS}: ready in ${secs(r.seconds)} (start.ts says ${r.reported} s)`);
      cold.push(r.seconds);
      clean = (await stopCloud(r, `cold run ${i}`, live)) && clean;
    }

    // Warm runs reuse the last cold run's state: tables, buckets, build output are all there.
    const warm: number[] = [];
    let mem: Memory | undefined;
    for (let i = 1; i <= RUNS; i++) {
      const r = await startCloud(dir, false, live);
      console.log(`  warm ${i}/${RUNS}: ready in ${secs(r.seconds)} (start.ts says ${r.reported} s)`);
      warm.push(r.seconds);
      if (i === RUNS) {
        await sleep(REST_MS);
        mem = memoryAtRest(r.track);
      }
      clean = (await stopCloud(r, `warm run ${i}`, live)) && clean;
    }

    const bare: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const r = await bareDynamoDb(live, temps);
      console.log(`  bare DynamoDB Local ${i}/${RUNS}: ListTables answered in ${secs(r.seconds)}`);
      bare.push(r.seconds);
      clean = r.clean && clean;
    }

    if (mem) printReport(cold, warm, bare, mem);
    console.log(
      clean ? '\nno process left running' : '\nSOME PROCESSES WERE LEFT RUNNING (killed, see above)',
    );
    return clean ? 0 : 1;
  } catch (err) {
    console.error(`bench start failed: ${err instanceof Error ? err.message : err}`);
    return 1;
  } finally {
    for (const t of live) {
      for (const p of killAll(t)) console.log(`  killed pid ${p.pid} left by a failed run`);
    }
    for (const d of temps) await rm(d, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
