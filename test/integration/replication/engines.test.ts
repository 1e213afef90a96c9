import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreBackup, runBackup } from '../../../agent/backup/index.ts';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import { readIfExists } from '../../../agent/engines/fs.ts';
import type { EngineLayout, ReplicationSource } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { processesIn, signal, waitFor } from '../../../agent/engines/process.ts';
import { RedisManager } from '../../../agent/engines/redis.ts';
import { BUCKET, chainObject, newLayout, removeInstance } from '../backup/helpers.ts';
import { type S3Fixture, startS3 } from '../backup/s3-fixture.ts';

// The guest side of replication on real engines, without the control plane: a source takes its
// replication snapshot through the backup pipeline, a replica is restored from it and follows;
// writes flow source → replica, a replica refuses writes, a switchover loses nothing and the old
// source follows the new one, and a detached replica writes on its own.

type Engine = 'mariadb' | 'postgresql' | 'redis';
type Layout = EngineLayout & { parent: string };

interface Client {
  write(layout: Layout, key: string): Promise<void>;
  has(layout: Layout, key: string): Promise<boolean>;
}

const mariadb: Client = {
  async write(layout, key) {
    await withMaria(layout, (c) => c.query('INSERT INTO app.t (k) VALUES (?)', [key]), 'app_user');
  },
  async has(layout, key) {
    const [rows] = await withMaria(layout, (c) =>
      c.query<mysql.RowDataPacket[]>('SELECT k FROM app.t WHERE k = ?', [key]),
    );
    return rows.length === 1;
  },
};

async function withMaria<T>(layout: Layout, work: (c: mysql.Connection) => Promise<T>, user = 'root') {
  const conn = await mysql.createConnection(
    user === 'root'
      ? { socketPath: join(layout.baseDir, 'run', 'mysqld.sock'), user: 'root' }
      : { host: '127.0.0.1', port: layout.port, user, password: 'App-pass-1', database: 'app' },
  );
  try {
    return await work(conn);
  } finally {
    await conn.end();
  }
}

const postgresql: Client = {
  async write(layout, key) {
    await withPg(layout, (c) => c.query('INSERT INTO t (k) VALUES ($1)', [key]));
  },
  async has(layout, key) {
    const { rowCount } = await withPg(layout, (c) => c.query('SELECT k FROM t WHERE k = $1', [key]));
    return rowCount === 1;
  },
};

async function withPg<T>(layout: Layout, work: (c: pg.Client) => Promise<T>) {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: layout.port,
    user: 'app_user',
    password: 'App-pass-1',
    database: 'app',
  });
  // A switchover restarts the server under an idle session: its error reaches the query, not the process.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const redis: Client = {
  async write(layout, key) {
    await withRedis(layout, (c) => c.set(key, '1'));
  },
  async has(layout, key) {
    return (await withRedis(layout, (c) => c.get(key))) === '1';
  },
};

async function withRedis<T>(layout: Layout, work: (c: Redis) => Promise<T>) {
  const client = new Redis({
    path: join(layout.baseDir, 'run', 'redis.sock'),
    password: await readIfExists(join(layout.baseDir, 'admin-password')),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

const engines: Record<
  Engine,
  { client: Client; make: (l: Layout) => ProcessEngine; setup: (l: Layout) => Promise<void> }
> = {
  mariadb: {
    client: mariadb,
    make: (l) => new MariaDbManager(l),
    setup: (l) =>
      withMaria(l, (c) => c.query('CREATE TABLE app.t (k VARCHAR(64) PRIMARY KEY) ENGINE=InnoDB')).then(
        () => {},
      ),
  },
  postgresql: {
    client: postgresql,
    make: (l) => new PostgresqlManager(l),
    setup: (l) => withPg(l, (c) => c.query('CREATE TABLE t (k text PRIMARY KEY)')).then(() => {}),
  },
  redis: { client: redis, make: (l) => new RedisManager(l), setup: async () => {} },
};

const account = { user: 'troveless_repl', password: randomBytes(18).toString('base64url') };
const prepareOptions = (engine: Engine) => ({
  memoryMb: 256,
  databases: engine === 'redis' ? [] : [{ name: 'app' }],
  users:
    engine === 'redis' ? [] : [{ name: 'app_user', password: 'App-pass-1', databases: [{ name: 'app' }] }],
});

const eventually = (what: string, probe: () => Promise<boolean>) =>
  waitFor(what, async () => ((await probe().catch(() => false)) ? true : undefined), { timeoutMs: 20_000 });

/** The source waits for a replica on each commit, by the engine's own account. */
async function syncOn(engine: Engine, layout: Layout): Promise<boolean> {
  if (engine === 'mariadb') {
    const [rows] = await withMaria(layout, (c) =>
      c.query<mysql.RowDataPacket[]>(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')",
      ),
    );
    const value = (name: string) => rows.find((r) => r.Variable_name === name)?.Value;
    return (
      value('Rpl_semi_sync_master_status') === 'ON' && Number(value('Rpl_semi_sync_master_clients')) >= 1
    );
  }
  // pg_stat_replication shows sync_state to superusers only: the agent's own way in.
  const admin = new pg.Client({ host: join(layout.baseDir, 'run'), port: layout.port, user: 'postgres' });
  admin.on('error', () => {});
  await admin.connect();
  const { rows } = await admin
    .query<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication')
    .finally(() => admin.end());
  return rows.some((r) => r.sync_state === 'sync' || r.sync_state === 'quorum');
}

/** A client's commit is held until a replica acknowledges it. */
async function waitingForReplica(engine: Engine, layout: Layout): Promise<boolean> {
  if (engine === 'mariadb') {
    const [rows] = await withMaria(layout, (c) =>
      c.query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_wait_sessions'"),
    );
    return Number(rows[0]?.Value) >= 1;
  }
  const { rows } = await withPg(layout, (c) =>
    c.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
  );
  return rows.length >= 1;
}

describe.each(['mariadb', 'postgresql', 'redis'] as const)('%s replication on the guest', (engine) => {
  const { client, make, setup } = engines[engine];
  let s3: S3Fixture;
  let primary: { layout: Layout; manager: ProcessEngine };
  let replica: { layout: Layout; manager: ProcessEngine };
  const sourceOf = (l: Layout): ReplicationSource => ({ host: '127.0.0.1', port: l.port, ...account });

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    const layout = await newLayout(engine);
    primary = { layout, manager: make(layout) };
    await primary.manager.prepare(prepareOptions(engine));
    await setup(layout);
    await client.write(layout, 'before-snapshot');
  }, 120_000);

  afterAll(async () => {
    await removeInstance(replica?.manager, replica?.layout);
    await removeInstance(primary?.manager, primary?.layout);
    await s3?.stop();
  }, 60_000);

  it('seeds a replica from a snapshot of its source, which then follows it read-only', async () => {
    await primary.manager.enableAsSource(account);
    const dataKey = randomBytes(32);
    const key = `replication/${engine}-${randomBytes(4).toString('hex')}`;
    const snapshot = await runBackup(engine, primary.layout, { bucket: BUCKET, key, s3: s3.client }, dataKey);
    await client.write(primary.layout, 'after-snapshot');

    const layout = await newLayout(engine);
    replica = { layout, manager: make(layout) };
    await restoreBackup(engine, layout, [chainObject(key, snapshot.checksum, dataKey)], s3.client);
    await replica.manager.prepare({
      ...prepareOptions(engine),
      users: [],
      databases: [],
      replication: sourceOf(primary.layout),
    });

    expect(await client.has(layout, 'before-snapshot')).toBe(true);
    await eventually('the write made after the snapshot', () => client.has(layout, 'after-snapshot'));
    await client.write(primary.layout, 'while-following');
    await eventually('a write on the source', () => client.has(layout, 'while-following'));
    await expect(client.write(layout, 'on-the-replica')).rejects.toThrow(/read.only|READONLY|read-only/i);

    const status = await replica.manager.replicationStatus();
    expect(status).toMatchObject({
      role: 'replica',
      running: true,
      source: `127.0.0.1:${primary.layout.port}`,
    });
    expect(await primary.manager.replicationStatus()).toMatchObject({ role: 'source' });
  });

  it('in sync mode makes a commit on the source wait for its replica (Redis refuses it)', async () => {
    if (engine === 'redis') {
      await expect(primary.manager.setReplicationMode('sync')).rejects.toThrow(/cannot .*sync/);
      return;
    }
    // Both members get the set's mode, as the control plane sends it to every member.
    await replica.manager.setReplicationMode('sync');
    await primary.manager.setReplicationMode('sync');
    await eventually('the source to count its replica as synchronous', () => syncOn(engine, primary.layout));

    await replica.manager.stop();
    let committed = false;
    const pending = client.write(primary.layout, 'sync-write').then(() => {
      committed = true;
    });
    await eventually('the commit to wait for a replica', () => waitingForReplica(engine, primary.layout));
    expect(committed).toBe(false);
    await replica.manager.start();
    await pending;
    await eventually('the waited-for row on the replica', () => client.has(replica.layout, 'sync-write'));
  }, 90_000);

  it('switches over with nothing lost: the old source follows the new one', async () => {
    // A writer commits numbered rows on the source until the source refuses it: every row it saw
    // committed must be on the new source.
    const acknowledged: string[] = [];
    const writer = (async () => {
      for (let i = 0; i < 5_000; i++) {
        try {
          await client.write(primary.layout, `w${i}`);
        } catch {
          return;
        }
        acknowledged.push(`w${i}`);
      }
    })();
    await waitFor(
      'the writer to commit a few rows',
      async () => (acknowledged.length >= 5 ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    await primary.manager.makeReadOnly(true);
    const position = await primary.manager.latestPosition();
    await replica.manager.waitForPosition(position, 30_000);
    await replica.manager.detachReplica();
    await replica.manager.enableAsSource(account);
    await primary.manager.attachReplica(sourceOf(replica.layout));

    await writer;
    for (const key of acknowledged) expect(await client.has(replica.layout, key), key).toBe(true);
    // The new source keeps the set's mode: it waits for the old source, now its replica.
    if (engine !== 'redis')
      await eventually('the new source to wait for its replica', () => syncOn(engine, replica.layout));
    await client.write(replica.layout, 'after-switchover');
    await eventually('a write on the new source', () => client.has(primary.layout, 'after-switchover'));
    expect(await client.has(primary.layout, 'while-following')).toBe(true);
    await expect(client.write(primary.layout, 'on-the-old-source')).rejects.toThrow(/read.only|READONLY/i);
    expect(await primary.manager.replicationStatus()).toMatchObject({ role: 'replica', running: true });
  });

  it('detaches a replica into a standalone instance that takes writes', async () => {
    await primary.manager.detachReplica();
    await client.write(primary.layout, 'standalone');
    expect(await client.has(primary.layout, 'standalone')).toBe(true);
    expect(await client.has(replica.layout, 'standalone')).toBe(false);
    expect(await primary.manager.replicationStatus()).toBeUndefined();
  });
});

// A failover, PostgreSQL's way: the source's engine dies (SIGKILL) under a sync set, its replica
// is promoted, and the old source comes back as the guest brings it back (its engine started as
// the primary it was, at boot), then runs the order left on its queue: follow the new source. Its
// timeline forked from the new source's, so it must be rewound (pg_rewind) before it can stream.
describe('postgresql failover: the old source rewinds and follows the new one', () => {
  const { client, make, setup } = engines.postgresql;
  let s3: S3Fixture;
  let oldSource: { layout: Layout; manager: ProcessEngine };
  let newSource: { layout: Layout; manager: ProcessEngine };
  const sourceOf = (l: Layout): ReplicationSource => ({ host: '127.0.0.1', port: l.port, ...account });

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    const layout = await newLayout('postgresql');
    oldSource = { layout, manager: make(layout) };
    await oldSource.manager.prepare(prepareOptions('postgresql'));
    await setup(layout);
    await oldSource.manager.enableAsSource(account);
    const dataKey = randomBytes(32);
    const key = `replication/pg-failover-${randomBytes(4).toString('hex')}`;
    const snapshot = await runBackup('postgresql', layout, { bucket: BUCKET, key, s3: s3.client }, dataKey);
    const replicaLayout = await newLayout('postgresql');
    newSource = { layout: replicaLayout, manager: make(replicaLayout) };
    await restoreBackup(
      'postgresql',
      replicaLayout,
      [chainObject(key, snapshot.checksum, dataKey)],
      s3.client,
    );
    await newSource.manager.prepare({
      ...prepareOptions('postgresql'),
      users: [],
      databases: [],
      replication: sourceOf(layout),
    });
    await newSource.manager.setReplicationMode('sync');
    await oldSource.manager.setReplicationMode('sync');
    await eventually('the source to count its replica as synchronous', () => syncOn('postgresql', layout));
  }, 180_000);

  afterAll(async () => {
    await removeInstance(newSource?.manager, newSource?.layout);
    await removeInstance(oldSource?.manager, oldSource?.layout);
    await s3?.stop();
  }, 60_000);

  it('kills the source, promotes the replica, and the old source rejoins by pg_rewind', async () => {
    for (let i = 0; i < 20; i++) await client.write(oldSource.layout, `before-${i}`);
    // Enough replayed pages that the new source's first checkpoint after its promotion (a spread
    // one) takes far longer than this test: until it ends, its control file names the old
    // timeline, and pg_rewind 15 found "no rewind required" (rewindFrom checkpoints it first).
    await withPg(oldSource.layout, (c) =>
      c.query("INSERT INTO t (k) SELECT 'bulk-' || g FROM generate_series(1, 200000) g"),
    );
    // The old source's engine dies at once, as the e2e's SIGKILL: postmaster and every backend.
    const dataDir = join(oldSource.layout.baseDir, 'data');
    const real = await realpath(dataDir);
    const pid = await oldSource.manager.pid();
    expect(pid).toBeGreaterThan(0);
    for (const p of [pid as number, ...(await processesIn(real))]) signal(p, 'SIGKILL');
    await waitFor(
      'the old source to be gone',
      async () => ((await processesIn(real)).length ? undefined : true),
      {
        timeoutMs: 10_000,
      },
    );

    // The eject: the replica is promoted and becomes the set's source, with no live replica yet
    // (the control plane tells it not to wait, guestModeOf).
    await newSource.manager.detachReplica();
    await newSource.manager.enableAsSource(account);
    await newSource.manager.setReplicationMode('async');
    for (let i = 0; i < 5; i++) await client.write(newSource.layout, `after-${i}`);

    // The old source's guest boots: the engine starts as the primary it was (crash recovery)...
    await oldSource.manager.start();
    // ...then runs the order left on its queue.
    await oldSource.manager.attachReplica(sourceOf(newSource.layout));
    expect(await oldSource.manager.replicationStatus()).toMatchObject({ role: 'replica', running: true });
    // And it keeps streaming: a standby on a forked history streams only for a few milliseconds.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await oldSource.manager.replicationStatus()).toMatchObject({ role: 'replica', running: true });
    for (let i = 0; i < 20; i++) expect(await client.has(oldSource.layout, `before-${i}`)).toBe(true);
    for (let i = 0; i < 5; i++) expect(await client.has(oldSource.layout, `after-${i}`)).toBe(true);
    // Sync again, the new source waits for its rejoined replica.
    await newSource.manager.setReplicationMode('sync');
    await eventually('the new source to count the old one as synchronous', () =>
      syncOn('postgresql', newSource.layout),
    );
    await client.write(newSource.layout, 'after-rejoin');
    await eventually('the rejoined member to replay', () => client.has(oldSource.layout, 'after-rejoin'));
    await expect(client.write(oldSource.layout, 'on-the-old-source')).rejects.toThrow(/read.only/i);
  }, 180_000);
});
