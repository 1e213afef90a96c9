// `npm run bench -- upgrade mysql|mariadb [rows]`: Trove's upgrade of a MariaDB 10.11.18 instance to
// 10.11 (the system's 10.11.19) through the API (the backup taken first, the data dir copied on
// the volume, 10.11.19 started, mariadb-upgrade --force, the data's fingerprint compared,
// ACTIVE/HEALTHY again), beside the guest's own steps by hand on a data dir loaded by the same SQL
// in the same run: the copy (cp -a), then 10.11.19 started and mariadb-upgrade --force.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { type MariadbBuild, mariadbBuild, mariadbPrograms } from '../lib/catalog/mariadb-versions.ts';
import { Cleanup, fixed, load, sleep } from './cloud.ts';
import { type UpgradeSpec, USER, viaApi } from './upgrade.ts';

/** ~200 bytes a row, as the PostgreSQL bench's. */
const load_sql = (rows: number) => [
  'CREATE TABLE big (k INT PRIMARY KEY, v VARCHAR(32) NOT NULL, pad VARCHAR(128) NOT NULL)',
  `INSERT INTO big SELECT seq, MD5(seq), REPEAT(MD5(seq * 3), 4) FROM seq_1_to_${rows}`,
];
const SIZE_SQL =
  "SELECT SUM(data_length + index_length) AS b FROM information_schema.TABLES WHERE table_schema = 'benchdb'";

async function loadInto(options: mysql.ConnectionOptions, rows: number): Promise<number> {
  const c = await mysql.createConnection(options);
  try {
    for (const sql of load_sql(rows)) await c.query(sql);
    // information_schema's sizes are InnoDB's statistics, not yet gathered right after the load.
    await c.query('ANALYZE TABLE big');
    const [found] = await c.query<mysql.RowDataPacket[]>(SIZE_SQL);
    return Number(found[0]?.b);
  } finally {
    await c.end();
  }
}

const spec = (type: string): UpgradeSpec => ({
  type,
  from: '10.11.18',
  to: '10.11',
  load: (address, rows) =>
    loadInto(
      {
        host: address.host,
        port: address.port ?? 3306,
        user: USER.name,
        password: USER.password,
        database: 'benchdb',
      },
      rows,
    ),
});

/** By hand, as the mysql user on a data dir of its own: 10.11.18 loaded, then the guest's steps. */
async function byHand(rows: number) {
  const [from, to] = ['10.11.18', '10.11'].map((v) => mariadbBuild(v) as MariadbBuild) as [
    MariadbBuild,
    MariadbBuild,
  ];
  const dir = mkdtempSync(join(tmpdir(), 'tl-bench-mdb-upgrade-'));
  const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
  chownSync(dir, uid, uid);
  const data = join(dir, 'data');
  const socket = join(dir, 's.sock');
  const pidFile = join(dir, 'mariadbd.pid');
  const as = (user: string, cmd: string, args: string[]) =>
    execFileSync('runuser', ['-u', user, '--', cmd, ...args], {
      cwd: dir,
      stdio: 'pipe',
      maxBuffer: 64 << 20,
    });
  const connect = () => mysql.createConnection({ socketPath: socket, user: 'root' });
  const start = async (build: MariadbBuild) => {
    const p = mariadbPrograms(build);
    const log = openSync(join(dir, 'server.log'), 'a');
    spawn(
      'runuser',
      [
        '-u',
        'mysql',
        '--',
        p.mariadbd,
        '--no-defaults',
        `--basedir=${build.basedir}`,
        `--lc-messages-dir=${p.shareDir}`,
        `--plugin-dir=${p.pluginDir}`,
        `--datadir=${data}`,
        `--socket=${socket}`,
        `--pid-file=${pidFile}`,
        '--skip-networking',
        '--innodb-buffer-pool-size=512M',
      ],
      { detached: true, stdio: ['ignore', log, log] },
    ).unref();
    closeSync(log);
    for (let i = 0; i < 600; i++) {
      const ok = await connect().then(
        (c) => c.end().then(() => true),
        () => false,
      );
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`mariadbd ${build.version} did not start: see ${dir}/server.log`);
  };
  const stop = async () => {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    while (existsSync(`/proc/${pid}`)) await sleep(50);
  };
  try {
    as('mysql', mariadbPrograms(from).installDb, [
      '--no-defaults',
      `--basedir=${from.basedir}`,
      `--datadir=${data}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--skip-name-resolve',
    ]);
    await start(from);
    const c = await connect();
    await c.query('CREATE DATABASE benchdb');
    await c.end();
    await loadInto({ socketPath: socket, user: 'root', database: 'benchdb' }, rows);
    await stop();
    let t = performance.now();
    execFileSync('cp', ['-a', data, join(dir, 'kept')]);
    const copy = (performance.now() - t) / 1000;
    t = performance.now();
    await start(to);
    execFileSync(
      mariadbPrograms(to).upgrade,
      ['--no-defaults', `--socket=${socket}`, '--user=root', '--force'],
      {
        stdio: 'pipe',
        maxBuffer: 64 << 20,
      },
    );
    const upgrade = (performance.now() - t) / 1000;
    await stop();
    return { copy, upgrade };
  } finally {
    if (existsSync(pidFile)) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(type: string, args: string[]): Promise<number> {
  const rows = Number(args[0] ?? 1_500_000);
  console.log(
    `bench upgrade: ${type} MariaDB 10.11.18 -> 10.11 (10.11.19), ${rows} rows of ~200 bytes; through the API ` +
      `(backup first, copy, mariadb-upgrade, verified) and by hand (copy, start, mariadb-upgrade); node ${process.version}`,
  );
  const cleanup = new Cleanup();
  let api: { seconds: number; size: number } | undefined;
  try {
    api = await viaApi(rows, cleanup, spec(type));
    console.log(`  through the API: ${fixed(api.seconds, 1)} s for ${fixed(api.size / 1e6, 0)} MB`);
  } finally {
    const clean = await cleanup.finish('bench upgrade');
    if (!clean) console.log('SOME PROCESSES WERE LEFT RUNNING (killed, see above)');
  }
  console.log(`  by hand: loading the same rows into a data dir of its own; ${load()}`);
  const hand = await byHand(rows);
  console.log('');
  console.log(`data: ${fixed(api.size / 1e6, 0)} MB (tables and indexes)`);
  console.log(`Troveless upgrade 10.11.18 -> 10.11.19 (PATCH to ACTIVE/HEALTHY): ${fixed(api.seconds, 1)} s`);
  console.log(`by hand: cp -a of the stopped data dir:                          ${fixed(hand.copy, 1)} s`);
  console.log(`by hand: 10.11.19 started + mariadb-upgrade --force:             ${fixed(hand.upgrade, 1)} s`);
  console.log(`load: ${load()}`);
  return 0;
}
