import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackupResult, restoreBackup, runBackup } from '../../../agent/backup/index.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { waitFor } from '../../../agent/engines/process.ts';
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

// mariadb-backup → zstd → AES-256-GCM → S3 multipart, against a real MariaDB and a real s3rver:
// a ~300 MB full backup (random, so incompressible: the stored object is as big as the stream),
// an incremental on top of it, restores of both into new instances, and the failures.

const ROWS_LOG2 = 18; // 262,144 rows of 1,000 random bytes: ~260 MB of table, ~300 MB of stream
const options = { memoryMb: 512, databases: [{ name: 'app' }], users: [] };

type Layout = EngineLayout & { parent: string };

async function sql<T>(layout: EngineLayout, work: (conn: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({
    socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
    user: 'root',
    database: 'app',
  });
  try {
    return await work(conn);
  } finally {
    await conn.end();
  }
}

/** Rows, and a digest of every row's id and bytes. */
function dataChecksum(layout: EngineLayout): Promise<string> {
  return sql(layout, async (conn) => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT COUNT(*) AS n, SUM(id) AS ids, SUM(CRC32(CONCAT(id, b))) AS crc, BIT_XOR(CRC32(b)) AS x FROM t',
    );
    return JSON.stringify(rows[0]);
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('mariadb backup and restore', { timeout: 300_000 }, () => {
  let s3: S3Fixture;
  let source: Layout;
  let sourceManager: MariaDbManager;
  const restored: { layout: Layout; manager: MariaDbManager }[] = [];
  const dataKey = randomBytes(32);
  let full: BackupResult;
  let incremental: BackupResult;
  let afterFull: string;
  let afterIncremental: string;
  const run = randomBytes(4).toString('hex');
  const fullKey = `mariadb/${run}/full.xbstream.zst.enc`;
  const incKey = `mariadb/${run}/incremental-1.xbstream.zst.enc`;

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    source = await newLayout('mariadb');
    sourceManager = new MariaDbManager(source);
    await sourceManager.prepare(options);
    await sql(source, async (conn) => {
      await conn.query('CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, b VARBINARY(1000)) ENGINE=InnoDB');
      await conn.query('INSERT INTO t (b) VALUES (RANDOM_BYTES(1000))');
      for (let i = 0; i < ROWS_LOG2; i++)
        await conn.query('INSERT INTO t (b) SELECT RANDOM_BYTES(1000) FROM t');
    });
    afterFull = await dataChecksum(source);
  }, 300_000);

  afterAll(async () => {
    for (const r of restored) await removeInstance(r.manager, r.layout);
    await removeInstance(sourceManager, source);
    await s3?.stop();
    expect(await toolChildren()).toEqual([]);
  }, 120_000);

  async function restoreAndStart(chain: ReturnType<typeof chainObject>[]): Promise<string> {
    const layout = await newLayout('mariadb');
    const manager = new MariaDbManager(layout);
    restored.push({ layout, manager });
    const { ms } = await measure(() => restoreBackup('mariadb', layout, chain, s3.client));
    console.log(
      `[restore mariadb] ${chain.length} object(s) restored and prepared in ${(ms / 1000).toFixed(2)} s`,
    );
    // prepare() finds the instance initialised: it writes my.cnf and starts on the restored data.
    await manager.prepare(options);
    expect(await manager.status()).toBe('healthy');
    return dataChecksum(layout);
  }

  it('takes a full backup at bounded memory, stored encrypted with the sha256 it reports', async () => {
    const work = await mkdtemp(join(tmpdir(), 'tl-bk-raw-'));
    const rawSeconds = await rawToolSeconds(
      'mariadb-backup',
      [
        `--defaults-file=${join(source.baseDir, 'my.cnf')}`,
        '--backup',
        '--stream=xbstream',
        '--user=root',
        `--socket=${join(source.baseDir, 'run', 'mysqld.sock')}`,
        `--target-dir=${join(work, 't')}`,
      ],
      { cwd: work },
    ).finally(() => rm(work, { recursive: true, force: true }));
    const { used_bytes } = await sourceManager.filesystemStats();
    s3.discardUploads(true);
    const discarded = await measure(() =>
      runBackup('mariadb', source, { bucket: BUCKET, key: `${fullKey}.dropped`, s3: s3.client }, dataKey, {}),
    ).finally(() => s3.discardUploads(false));
    const m = await measure(() =>
      runBackup('mariadb', source, { bucket: BUCKET, key: fullKey, s3: s3.client }, dataKey, {}),
    );
    full = m.result;
    report('mariadb full (data: data dir)', {
      dataMb: used_bytes / MB,
      rawSeconds,
      discardMs: discarded.ms,
      pipelineMs: m.ms,
      storedBytes: full.size_bytes,
      peakRssMb: Math.max(m.peakRssMb, discarded.peakRssMb),
      baseRssMb: m.baseRssMb,
    });
    expect(full.size_bytes).toBeGreaterThan(250 * MB);
    expect(full.lsn).toMatch(/^\d+$/);
    // Two 8 MiB parts in flight plus the one filling: far below the object's size.
    expect(m.peakRssMb - m.baseRssMb).toBeLessThan(150);
    expect(discarded.peakRssMb - discarded.baseRssMb).toBeLessThan(150);
    const file = s3.objectFile(BUCKET, fullKey);
    expect(await sha256File(file)).toBe(full.checksum);
    // Encrypted: no xbstream magic ("XBSTCK01") and no zstd magic at the start.
    const head = Buffer.alloc(16);
    const fh = await open(file);
    await fh.read(head, 0, 16, 0);
    await fh.close();
    expect(head[0]).toBe(1);
    expect(head.includes(Buffer.from('XBSTCK01'))).toBe(false);
    expect(head.includes(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe(false);
    expect(await openUploads(s3)).toEqual([]);
  });

  it('takes an incremental backup from the full backup’s lsn', async () => {
    await sql(source, async (conn) => {
      await conn.query('INSERT INTO t (b) SELECT RANDOM_BYTES(1000) FROM t LIMIT 5000');
      await conn.query('UPDATE t SET b = RANDOM_BYTES(1000) WHERE id % 97 = 0');
      await conn.query('DELETE FROM t WHERE id % 101 = 0');
    });
    afterIncremental = await dataChecksum(source);
    expect(afterIncremental).not.toBe(afterFull);
    const started = performance.now();
    incremental = await runBackup(
      'mariadb',
      source,
      { bucket: BUCKET, key: incKey, s3: s3.client },
      dataKey,
      {
        parentLsn: full.lsn,
      },
    );
    console.log(
      `[backup mariadb incremental] ${(incremental.size_bytes / MB).toFixed(1)} MB stored in ${((performance.now() - started) / 1000).toFixed(2)} s (full: ${(full.size_bytes / MB).toFixed(1)} MB)`,
    );
    expect(incremental.size_bytes).toBeLessThan(full.size_bytes / 2);
    expect(Number(incremental.lsn)).toBeGreaterThanOrEqual(Number(full.lsn));
    // Changed after the incremental: must not show up in either restore.
    await sql(source, (conn) => conn.query('DELETE FROM t WHERE id < 1000'));
  });

  it('restores the full backup into a new instance', async () => {
    expect(await restoreAndStart([chainObject(fullKey, full.checksum, dataKey)])).toBe(afterFull);
  });

  it('restores the full backup plus the incremental', async () => {
    const chain = [
      chainObject(fullKey, full.checksum, dataKey),
      chainObject(incKey, incremental.checksum, dataKey),
    ];
    expect(await restoreAndStart(chain)).toBe(afterIncremental);
  });

  it('refuses a corrupted object before writing anything', async () => {
    await corruptCopy(s3, incKey, `${incKey}.corrupt`);
    const layout = await newLayout('mariadb');
    restored.push({ layout, manager: new MariaDbManager(layout) });
    const chain = [
      chainObject(fullKey, full.checksum, dataKey),
      chainObject(`${incKey}.corrupt`, incremental.checksum, dataKey),
    ];
    await rejection(restoreBackup('mariadb', layout, chain, s3.client), /failed its checksum/);
    expect(await entriesOf(layout.baseDir)).toEqual([]);
    expect(await entriesOf(join(layout.baseDir, 'data'))).toEqual([]);
  });

  it('refuses an object whose checksum matches but whose encryption does not verify, leaving no data dir', async () => {
    // As if the stored checksum had been changed along with the object: GCM's tag still catches it.
    await corruptCopy(s3, incKey, `${incKey}.forged`);
    const forged = await sha256File(s3.objectFile(BUCKET, `${incKey}.forged`));
    const layout = await newLayout('mariadb');
    restored.push({ layout, manager: new MariaDbManager(layout) });
    const chain = [
      chainObject(fullKey, full.checksum, dataKey),
      chainObject(`${incKey}.forged`, forged, dataKey),
    ];
    await rejection(restoreBackup('mariadb', layout, chain, s3.client), /authentication|zstd|mbstream/);
    expect(await entriesOf(layout.baseDir)).toEqual([]);
    // And a wrong data key, the same way.
    const wrongKey = [chainObject(incKey, incremental.checksum, randomBytes(32))];
    await rejection(restoreBackup('mariadb', layout, wrongKey, s3.client), /authentication/);
    expect(await entriesOf(layout.baseDir)).toEqual([]);
    expect(await toolChildren()).toEqual([]);
  });

  it('refuses a chain with a missing object before writing anything', async () => {
    const layout = await newLayout('mariadb');
    restored.push({ layout, manager: new MariaDbManager(layout) });
    const chain = [
      chainObject(fullKey, full.checksum, dataKey),
      chainObject(`mariadb/${run}/missing`, incremental.checksum, dataKey),
    ];
    await rejection(restoreBackup('mariadb', layout, chain, s3.client), /does not exist/);
    expect(await entriesOf(layout.baseDir)).toEqual([]);
  });

  it('leaves no upload open and no tool running when the backup is aborted midway', async () => {
    const controller = new AbortController();
    const key = `mariadb/${run}/aborted`;
    const backup = runBackup('mariadb', source, { bucket: BUCKET, key, s3: s3.client }, dataKey, {
      signal: controller.signal,
    });
    // Cancelled once the upload exists and the stream is flowing.
    await waitFor('the upload to start', async () => ((await openUploads(s3)).length ? true : undefined), {
      timeoutMs: 30_000,
    });
    const started = performance.now();
    controller.abort(new Error('backup cancelled by the test'));
    await rejection(backup, /cancelled/);
    console.log(
      `[backup mariadb] cancelled: settled ${(performance.now() - started).toFixed(0)} ms after the abort`,
    );
    expect(performance.now() - started).toBeLessThan(10_000);
    // Whatever the moment of the abort: nothing open, nothing stored under the key.
    expect(await openUploads(s3)).toEqual([]);
    await expect(s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toThrow();
    expect(await toolChildren()).toEqual([]);
  });

  it('leaves no upload open and no tool running when S3 fails midway', async () => {
    const before = s3.aborts.length;
    s3.failPartsFrom(3);
    try {
      await rejection(
        runBackup(
          'mariadb',
          source,
          { bucket: BUCKET, key: `mariadb/${run}/failed`, s3: s3.client },
          dataKey,
          {},
        ),
        /injected|InternalError|500/,
      );
    } finally {
      s3.failPartsFrom(undefined);
    }
    expect(s3.aborts.length).toBe(before + 1);
    expect(await openUploads(s3)).toEqual([]);
    expect(await toolChildren()).toEqual([]);
  });
});
