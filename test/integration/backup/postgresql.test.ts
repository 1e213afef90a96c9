import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackupResult, restoreBackup, runBackup } from '../../../agent/backup/index.ts';
import { withReplicationAccess } from '../../../agent/backup/postgresql.ts';
import { getSealed } from '../../../agent/backup/stream.ts';
import { account } from '../../../agent/engines/fs.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { waitFor } from '../../../agent/engines/process.ts';
import { manifestKeyOf } from '../../../lib/backups/model.ts';
import {
  BUCKET,
  chainObject,
  corruptCopy,
  entriesOf,
  MB,
  measure,
  newLayout,
  openUploads,
  rawToolSeconds,
  rejection,
  removeInstance,
  report,
  toolChildren,
} from './helpers.ts';
import { type S3Fixture, startS3 } from './s3-fixture.ts';

// pg_basebackup (tar with its WAL) → zstd → AES-256-GCM → S3, against a real PostgreSQL 15.
// PostgreSQL 15 has no incremental base backup: incrementals are refused with NotImplemented.
// PostgreSQL 17 takes them (pg_basebackup --incremental from the parent's stored manifest) and
// restores a chain with pg_combinebackup: its own, smaller data set below.

const ROWS = 300_000;
const options = { memoryMb: 512, databases: [{ name: 'app' }], users: [] };

type Layout = EngineLayout & { parent: string };

async function sql<T>(layout: EngineLayout, work: (client: pg.Client) => Promise<T>): Promise<T> {
  // Peer authentication over the socket, as the agent's own sessions (root maps to postgres).
  const client = new pg.Client({
    host: join(layout.baseDir, 'run'),
    port: layout.port,
    user: 'postgres',
    database: 'app',
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function dataChecksum(layout: EngineLayout): Promise<string> {
  return sql(layout, async (client) => {
    const { rows } = await client.query(
      'SELECT count(*) AS n, sum(id) AS ids, sum(hashtext(id || v)::bigint) AS h, bit_xor(hashtext(v)) AS x FROM t',
    );
    return JSON.stringify(rows[0]);
  });
}

describe('postgresql backup and restore', { timeout: 240_000 }, () => {
  let s3: S3Fixture;
  let source: Layout;
  let sourceManager: PostgresqlManager;
  const restored: { layout: Layout; manager: PostgresqlManager }[] = [];
  const dataKey = randomBytes(32);
  let full: BackupResult;
  let afterFull: string;
  const run = randomBytes(4).toString('hex');
  const fullKey = `postgresql/${run}/full.tar.zst.enc`;

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    source = await newLayout('postgresql');
    sourceManager = new PostgresqlManager(source);
    await sourceManager.prepare(options);
    await sql(source, async (client) => {
      await client.query('CREATE TABLE t (id INT PRIMARY KEY, v TEXT NOT NULL)');
      await client.query(
        `INSERT INTO t SELECT g, md5(g::text) || repeat(md5(random()::text), 4) FROM generate_series(1, ${ROWS}) g`,
      );
      await client.query('CHECKPOINT');
    });
    afterFull = await dataChecksum(source);
  }, 240_000);

  afterAll(async () => {
    for (const r of restored) await removeInstance(r.manager, r.layout);
    await removeInstance(sourceManager, source);
    await s3?.stop();
    expect(await toolChildren()).toEqual([]);
  }, 120_000);

  it('takes a full backup, and leaves pg_hba.conf as it was', async () => {
    const hba = join(source.baseDir, 'data', 'pg_hba.conf');
    const hbaBefore = await readFile(hba, 'utf8');
    const owner = await account('postgres');
    const rawSeconds = await withReplicationAccess(source, () =>
      rawToolSeconds(
        '/usr/lib/postgresql/15/bin/pg_basebackup',
        [
          `--host=${join(source.baseDir, 'run')}`,
          `--port=${source.port}`,
          '--username=postgres',
          '--pgdata=-',
          '--format=tar',
          '--wal-method=fetch',
          '--checkpoint=fast',
          '--no-manifest',
        ],
        { uid: owner.uid, gid: owner.gid, env: { HOME: '/var/lib/postgresql' } },
      ),
    );
    const { used_bytes } = await sourceManager.filesystemStats();
    const m = await measure(() =>
      runBackup('postgresql', source, { bucket: BUCKET, key: fullKey, s3: s3.client }, dataKey, {}),
    );
    full = m.result;
    report('postgresql full (data: data dir)', {
      dataMb: used_bytes / MB,
      rawSeconds,
      pipelineMs: m.ms,
      storedBytes: full.size_bytes,
      peakRssMb: m.peakRssMb,
      baseRssMb: m.baseRssMb,
    });
    expect(full.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(full.lsn).toBeUndefined();
    expect(await readFile(hba, 'utf8')).toBe(hbaBefore);
    expect(await openUploads(s3)).toEqual([]);
    // Changed after the backup: must not show up in the restore.
    await sql(source, (client) => client.query('DELETE FROM t WHERE id % 3 = 0'));
  });

  it('refuses incremental backups and chains: PostgreSQL 15 has none', async () => {
    const err = await rejection(
      runBackup('postgresql', source, { bucket: BUCKET, key: `${fullKey}.inc`, s3: s3.client }, dataKey, {
        parentLsn: '1234',
      }),
      /PostgreSQL 15 has no incremental base backup/,
    );
    expect(err.name).toBe('NotImplemented');
    const byManifest = await rejection(
      runBackup('postgresql', source, { bucket: BUCKET, key: `${fullKey}.inc`, s3: s3.client }, dataKey, {
        parentManifest: { bucket: BUCKET, key: manifestKeyOf(fullKey), dataKey },
      }),
      /PostgreSQL 15 has no incremental base backup \(pg_basebackup --incremental needs PostgreSQL 17\)/,
    );
    expect(byManifest.name).toBe('NotImplemented');
    expect(full.manifest).toBeUndefined();
    const layout = await newLayout('postgresql');
    restored.push({ layout, manager: new PostgresqlManager(layout) });
    const chain = [
      chainObject(fullKey, full.checksum, dataKey),
      chainObject(fullKey, full.checksum, dataKey),
    ];
    const refused = await rejection(restoreBackup('postgresql', layout, chain, s3.client), /incremental/);
    expect(refused.name).toBe('NotImplemented');
    expect(await entriesOf(layout.baseDir)).toEqual([]);
  });

  it('restores the full backup into a new instance', async () => {
    const layout = await newLayout('postgresql');
    const manager = new PostgresqlManager(layout);
    restored.push({ layout, manager });
    const { ms } = await measure(() =>
      restoreBackup('postgresql', layout, [chainObject(fullKey, full.checksum, dataKey)], s3.client),
    );
    console.log(`[restore postgresql] restored in ${(ms / 1000).toFixed(2)} s`);
    await manager.prepare(options);
    expect(await manager.status()).toBe('healthy');
    expect(await dataChecksum(layout)).toBe(afterFull);
  });

  it('refuses a corrupted or missing object before writing anything', async () => {
    await corruptCopy(s3, fullKey, `${fullKey}.corrupt`);
    const layout = await newLayout('postgresql');
    restored.push({ layout, manager: new PostgresqlManager(layout) });
    await rejection(
      restoreBackup(
        'postgresql',
        layout,
        [chainObject(`${fullKey}.corrupt`, full.checksum, dataKey)],
        s3.client,
      ),
      /failed its checksum/,
    );
    expect(await entriesOf(layout.baseDir)).toEqual([]);
    await rejection(
      restoreBackup(
        'postgresql',
        layout,
        [chainObject(`${fullKey}.missing`, full.checksum, dataKey)],
        s3.client,
      ),
      /does not exist/,
    );
    expect(await entriesOf(layout.baseDir)).toEqual([]);
  });

  it('leaves no upload open, no tool running and pg_hba.conf as it was when S3 fails midway', async () => {
    const hba = join(source.baseDir, 'data', 'pg_hba.conf');
    const hbaBefore = await readFile(hba, 'utf8');
    s3.failPartsFrom(2);
    try {
      await rejection(
        runBackup(
          'postgresql',
          source,
          { bucket: BUCKET, key: `${fullKey}.failed`, s3: s3.client },
          dataKey,
          {},
        ),
        /injected|InternalError|500/,
      );
    } finally {
      s3.failPartsFrom(undefined);
    }
    expect(await openUploads(s3)).toEqual([]);
    expect(await toolChildren()).toEqual([]);
    expect(await readFile(hba, 'utf8')).toBe(hbaBefore);
  });
});

describe('postgresql 17 incremental backup and restore', { timeout: 180_000 }, () => {
  let s3: S3Fixture;
  let source: Layout;
  let sourceManager: PostgresqlManager;
  const restored: { layout: Layout; manager: PostgresqlManager }[] = [];
  // Each backup has its own data key; the incremental reads its parent's manifest with the parent's.
  const fullDataKey = randomBytes(32);
  const incDataKey = randomBytes(32);
  let full: BackupResult;
  let incremental: BackupResult;
  let atFull: string;
  let atIncremental: string;
  const run = randomBytes(4).toString('hex');
  const fullKey = `postgresql17/${run}/full.tar.zst.enc`;
  const incKey = `postgresql17/${run}/incremental-1.tar.zst.enc`;
  const newLayout17 = async (): Promise<Layout> => ({
    ...(await newLayout('postgresql')),
    datastoreVersion: '17',
  });
  const summarizeWal = (layout: EngineLayout) =>
    sql(layout, async (c) => (await c.query('SHOW summarize_wal')).rows[0]?.summarize_wal as string);

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    source = await newLayout17();
    sourceManager = new PostgresqlManager(source);
    await sourceManager.prepare(options);
    await sql(source, async (client) => {
      await client.query('CREATE TABLE t (id INT PRIMARY KEY, v TEXT NOT NULL)');
      await client.query(
        'INSERT INTO t SELECT g, md5(g::text) || repeat(md5(random()::text), 4) FROM generate_series(1, 20000) g',
      );
    });
  }, 120_000);

  afterAll(async () => {
    for (const r of restored) await removeInstance(r.manager, r.layout);
    await removeInstance(sourceManager, source);
    await s3?.stop();
    expect(await toolChildren()).toEqual([]);
  }, 120_000);

  it('turns the WAL summarizer on in a server configured without it, and keeps the manifest', async () => {
    // An instance configured before incremental backups: its troveless.conf has no summarize_wal.
    const conf = join(source.baseDir, 'data', 'troveless.conf');
    const configuredBefore = async () => {
      await writeFile(conf, (await readFile(conf, 'utf8')).replace(/^summarize_wal = on\n/m, ''));
      await sql(source, (c) => c.query('SELECT pg_reload_conf()'));
      await waitFor(
        'summarize_wal off',
        async () => ((await summarizeWal(source)) === 'off' ? true : undefined),
        { timeoutMs: 10_000 },
      );
    };
    expect(await readFile(conf, 'utf8')).toMatch(/^summarize_wal = on$/m);
    // Its agent starts it again (a reboot, a restart): the setting is added.
    await configuredBefore();
    await sourceManager.restart();
    expect(await summarizeWal(source)).toBe('on');
    // Or its first backup does, by a reload.
    await configuredBefore();
    atFull = await dataChecksum(source);
    full = await runBackup(
      'postgresql',
      source,
      { bucket: BUCKET, key: fullKey, s3: s3.client },
      fullDataKey,
    );
    expect(full.manifest).toBe(true);
    expect(await summarizeWal(source)).toBe('on');
    expect(await readFile(conf, 'utf8')).toMatch(/^summarize_wal = on$/m);
    // The manifest is stored beside the backup, sealed with the backup's own key.
    const manifest = await getSealed(s3.client, { bucket: BUCKET, key: manifestKeyOf(fullKey) }, fullDataKey);
    expect(JSON.parse(manifest.toString('utf8'))['PostgreSQL-Backup-Manifest-Version']).toBeGreaterThan(0);
  });

  it("takes an incremental from the full backup's manifest", async () => {
    await sql(source, async (c) => {
      await c.query('DELETE FROM t WHERE id % 5 = 0');
      await c.query("UPDATE t SET v = 'changed-' || id WHERE id % 7 = 0");
      await c.query("INSERT INTO t SELECT g, 'new-' || g FROM generate_series(30001, 31000) g");
    });
    atIncremental = await dataChecksum(source);
    expect(atIncremental).not.toBe(atFull);
    incremental = await runBackup(
      'postgresql',
      source,
      { bucket: BUCKET, key: incKey, s3: s3.client },
      incDataKey,
      { parentManifest: { bucket: BUCKET, key: manifestKeyOf(fullKey), dataKey: fullDataKey } },
    );
    expect(incremental.manifest).toBe(true);
    console.log(
      `[backup postgresql 17] full ${(full.size_bytes / MB).toFixed(1)} MB, incremental ${(incremental.size_bytes / MB).toFixed(1)} MB stored`,
    );
    // The parent's manifest was a file of the run dir only while the backup ran.
    expect((await entriesOf(join(source.baseDir, 'run'))).filter((e) => e.includes('manifest'))).toEqual([]);
    expect(await openUploads(s3)).toEqual([]);
    // Changed after the incremental: must not show up in its restore.
    await sql(source, (c) => c.query('DELETE FROM t WHERE id < 100'));
  });

  it('restores the chain to the data at the incremental, and the full to the data at the full', async () => {
    const chain = [
      chainObject(fullKey, full.checksum, fullDataKey),
      chainObject(incKey, incremental.checksum, incDataKey),
    ];
    for (const [objects, expected] of [
      [chain, () => atIncremental],
      [chain.slice(0, 1), () => atFull],
    ] as const) {
      const layout = await newLayout17();
      const manager = new PostgresqlManager(layout);
      restored.push({ layout, manager });
      await restoreBackup('postgresql', layout, [...objects], s3.client);
      expect(await entriesOf(layout.baseDir)).not.toContain('backup_manifest');
      await manager.prepare(options);
      expect(await manager.status()).toBe('healthy');
      expect(await dataChecksum(layout)).toBe(expected());
      expect(await entriesOf(join(layout.baseDir, 'data'))).not.toContain('backup_manifest');
    }
  });
});
