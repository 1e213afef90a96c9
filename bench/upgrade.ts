// `npm run bench -- upgrade [rows]`: Trove's upgrade of a PostgreSQL 15 instance to 17 through the
// API (PATCH datastore_version: the backup taken first, pg_upgrade --copy into a new data dir,
// the data's fingerprint compared, ACTIVE/HEALTHY again), beside plain pg_upgrade runs by hand
// on a cluster loaded by the same SQL in the same run (--copy, as the guest runs it, and --link).
// `npm run bench -- upgrade mysql [rows]` (or `mariadb`): MariaDB 10.11.18 → 10.11 (10.11.19)
// the same way, beside the guest's steps by hand (bench/upgrade-mariadb.ts).
// Prints figures; nothing here is a pass/fail on time.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { requirePostgresqlVersion } from '../lib/catalog/postgresql-versions.ts';
import { Cleanup, call, fixed, type Login, load, login, sleep, startBenchCloud } from './cloud.ts';

export const USER = { name: 'benchuser', password: 'Bench-pass-1' };
const TIMEOUT_MS = 1_800_000;

/** ~200 bytes a row on disk: 1.5 M rows are about 300 MB of table and 30 MB of index. */
const load_sql = (rows: number) => [
  'CREATE TABLE big (k int PRIMARY KEY, v text NOT NULL, pad text NOT NULL)',
  `INSERT INTO big SELECT g, md5(g::text), repeat(md5((g * 3)::text), 4) FROM generate_series(1, ${rows}) g`,
];

async function until(
  api: string,
  admin: Login,
  id: string,
  done: (v: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const res = await call(api, 'GET', `/v1.0/${admin.projectId}/instances/${id}`, admin.token);
    const view = res.json?.instance as Record<string, unknown> | undefined;
    if (view && done(view)) return view;
    if (view?.status === 'ERROR') throw new Error(`instance ${id} failed: ${JSON.stringify(view.fault)}`);
    if (Date.now() > deadline) throw new Error(`instance ${id}: ${res.text}`);
    await sleep(500);
  }
}

const healthy = (v: Record<string, unknown>) => v.status === 'ACTIVE' && v.operating_status === 'HEALTHY';

/** What the API run needs of an engine: its datastore and versions, and how to load it. */
export interface UpgradeSpec {
  type: string;
  from: string;
  to: string;
  /** Loads `rows` rows through the instance's address as USER into benchdb; answers the data's bytes. */
  load: (address: { host: string; port?: number }, rows: number) => Promise<number>;
}

const POSTGRESQL: UpgradeSpec = {
  type: 'postgresql',
  from: '15',
  to: '17',
  async load(address, rows) {
    const c = new pg.Client({
      host: address.host,
      port: address.port ?? 5432,
      user: USER.name,
      password: USER.password,
      database: 'benchdb',
    });
    await c.connect();
    for (const sql of load_sql(rows)) await c.query(sql);
    const size = Number((await c.query("SELECT pg_database_size('benchdb') AS b")).rows[0]?.b);
    await c.end();
    return size;
  },
};

/** Through the API: create `from`, load, upgrade to `to`; seconds of the upgrade and the data's size. */
export async function viaApi(rows: number, cleanup: Cleanup, spec: UpgradeSpec = POSTGRESQL) {
  const bench = await startBenchCloud(cleanup, 'upgrade');
  console.log(`  local cloud ready in ${fixed(bench.startSeconds, 1)} s; ${load()}`);
  const admin = await login(bench.api, 'admin', 'admin');
  const base = `/v1.0/${admin.projectId}/instances`;
  let id: string | undefined;
  try {
    const created = await call(bench.api, 'POST', base, admin.token, {
      instance: {
        name: 'bench-upgrade',
        flavorRef: '8',
        volume: { size: 3 },
        datastore: { type: spec.type, version: spec.from },
        databases: [{ name: 'benchdb' }],
        users: [{ ...USER, databases: [{ name: 'benchdb' }] }],
      },
    });
    id = (created.json?.instance as { id?: string } | undefined)?.id;
    if (!id) throw new Error(`create: ${created.status} ${created.text}`);
    const ready = await until(bench.api, admin, id, healthy);
    const address = (ready.addresses as { address: string; port?: number }[])[0];
    const loadStarted = performance.now();
    const size = await spec.load({ host: address?.address ?? '', port: address?.port }, rows);
    console.log(
      `  loaded ${rows} rows (${fixed(size / 1e6, 0)} MB) in ${fixed((performance.now() - loadStarted) / 1000, 1)} s`,
    );
    const started = performance.now();
    const res = await call(bench.api, 'PATCH', `${base}/${id}`, admin.token, {
      instance: { datastore_version: spec.to },
    });
    if (res.status !== 202) throw new Error(`upgrade: ${res.status} ${res.text}`);
    const view = await until(bench.api, admin, id, healthy);
    const seconds = (performance.now() - started) / 1000;
    if (view.fault) throw new Error(`upgrade failed: ${JSON.stringify(view.fault)}`);
    const version = (view.datastore as { version?: string }).version;
    if (version !== spec.to) throw new Error(`upgrade ended on version ${version}`);
    return { seconds, size };
  } finally {
    if (id) {
      await call(bench.api, 'DELETE', `${base}/${id}`, admin.token);
      const deadline = Date.now() + 180_000;
      while (Date.now() < deadline) {
        if ((await call(bench.api, 'GET', `${base}/${id}`, admin.token)).status === 404) break;
        await sleep(1_000);
      }
    }
    await bench.stop().catch((err) => console.log(`  stopping the cloud: ${err}`));
  }
}

/** By hand: a 15 cluster loaded by the same SQL, then pg_upgrade --copy and --link into 17. */
function byHand(rows: number) {
  const v15 = requirePostgresqlVersion('15');
  const v17 = requirePostgresqlVersion('17');
  const dir = mkdtempSync(join(tmpdir(), 'tl-bench-upgrade-'));
  const postgres = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  chownSync(dir, postgres, postgres);
  const as = (cmd: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], {
      cwd: dir,
      stdio: 'pipe',
      maxBuffer: 64 << 20,
    });
  const port = '55439';
  const initdb = (bin: string, data: string) =>
    as(join(bin, 'initdb'), [
      `--pgdata=${data}`,
      '--no-sync',
      '--username=postgres',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
    ]);
  try {
    const old = join(dir, 'd15');
    initdb(v15.binDir, old);
    as(join(v15.binDir, 'pg_ctl'), [
      '-D',
      old,
      '-w',
      // With a log file: a server left on pg_ctl's stdout pipe would keep execFileSync waiting.
      '-l',
      join(dir, 'server.log'),
      '-o',
      `-k ${dir} -p ${port} -c listen_addresses=''`,
      'start',
    ]);
    for (const sql of load_sql(rows))
      as(join(v17.clientBinDir, 'psql'), ['-h', dir, '-p', port, '-U', 'postgres', '-X', '-q', '-c', sql]);
    as(join(v15.binDir, 'pg_ctl'), ['-D', old, '-w', 'stop']);
    const time = (mode: string) => {
      const next = join(dir, `d17-${mode}`);
      initdb(v17.binDir, next);
      const t = performance.now();
      as(v17.pgUpgrade ?? '', [
        '-U',
        'postgres',
        '-b',
        v15.binDir,
        '-B',
        v17.binDir,
        '-d',
        old,
        '-D',
        next,
        `--${mode}`,
        '-s',
        dir,
        '-p',
        port,
        '-P',
        port,
      ]);
      return (performance.now() - t) / 1000;
    };
    // --copy first: --link leaves the old cluster unusable once the new one starts (it never does here).
    return { copy: time('copy'), link: time('link') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<number> {
  if (args[0] === 'mysql' || args[0] === 'mariadb')
    return (await import('./upgrade-mariadb.ts')).run(args[0], args.slice(1));
  const rows = Number(args[0] ?? 1_500_000);
  console.log(
    `bench upgrade: PostgreSQL 15 -> 17, ${rows} rows of ~200 bytes; through the API (backup first, ` +
      `pg_upgrade --copy, verified) and by hand (pg_upgrade alone); node ${process.version}`,
  );
  const cleanup = new Cleanup();
  let api: { seconds: number; size: number } | undefined;
  try {
    api = await viaApi(rows, cleanup);
    console.log(`  through the API: ${fixed(api.seconds, 1)} s for ${fixed(api.size / 1e6, 0)} MB`);
  } finally {
    const clean = await cleanup.finish('bench upgrade');
    if (!clean) console.log('SOME PROCESSES WERE LEFT RUNNING (killed, see above)');
  }
  console.log(`  by hand: loading the same rows into a cluster of its own; ${load()}`);
  const hand = byHand(rows);
  console.log('');
  console.log(`data: ${fixed(api.size / 1e6, 0)} MB (pg_database_size)`);
  console.log(`Troveless upgrade 15 -> 17 (PATCH to ACTIVE/HEALTHY): ${fixed(api.seconds, 1)} s`);
  console.log(`pg_upgrade --copy by hand:                           ${fixed(hand.copy, 1)} s`);
  console.log(`pg_upgrade --link by hand:                           ${fixed(hand.link, 1)} s`);
  console.log(`load: ${load()}`);
  return 0;
}
