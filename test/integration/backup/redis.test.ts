import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackupResult, restoreBackup, runBackup } from '../../../agent/backup/index.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { RedisManager } from '../../../agent/engines/redis.ts';
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

// redis-cli --rdb → zstd → AES-256-GCM → S3, against a real Redis with an admin password (which
// reaches redis-cli through REDISCLI_AUTH only). An RDB is always the whole dataset: no incrementals.

const KEYS = 200_000;
const PASSWORD = 'redis-admin-secret';
const options = { memoryMb: 512, databases: [], users: [], rootPassword: PASSWORD };

type Layout = EngineLayout & { parent: string };

async function session<T>(layout: EngineLayout, work: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    path: join(layout.baseDir, 'run', 'redis.sock'),
    password: PASSWORD,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

/** Every key and value, sorted, through sha256. */
function dataChecksum(layout: EngineLayout): Promise<string> {
  return session(layout, async (client) => {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'COUNT', 5000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    keys.sort();
    const hash = createHash('sha256');
    for (let i = 0; i < keys.length; i += 5000) {
      const slice = keys.slice(i, i + 5000);
      const values = await client.mget(...slice);
      slice.forEach((k, j) => {
        hash.update(`${k}\0${values[j]}\0`);
      });
    }
    return `${keys.length}:${hash.digest('hex')}`;
  });
}

describe('redis backup and restore', { timeout: 180_000 }, () => {
  let s3: S3Fixture;
  let source: Layout;
  let sourceManager: RedisManager;
  const restored: { layout: Layout; manager: RedisManager }[] = [];
  const dataKey = randomBytes(32);
  let full: BackupResult;
  let afterFull: string;
  const run = randomBytes(4).toString('hex');
  const fullKey = `redis/${run}/dump.rdb.zst.enc`;

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    source = await newLayout('redis');
    sourceManager = new RedisManager(source);
    await sourceManager.prepare(options);
    await session(source, async (client) => {
      for (let i = 0; i < KEYS; i += 10_000) {
        const batch = client.pipeline();
        for (let j = i; j < i + 10_000; j++) batch.set(`key:${j}`, randomBytes(75).toString('base64'));
        await batch.exec();
      }
      await client.hset('a-hash', { field: 'value', other: '42' });
    });
    afterFull = await dataChecksum(source);
  }, 120_000);

  afterAll(async () => {
    for (const r of restored) await removeInstance(r.manager, r.layout);
    await removeInstance(sourceManager, source);
    await s3?.stop();
    expect(await toolChildren()).toEqual([]);
  }, 60_000);

  it('takes a full backup with the admin password kept off the command line', async () => {
    const rawSeconds = await rawToolSeconds(
      'redis-cli',
      ['-s', join(source.baseDir, 'run', 'redis.sock'), '--no-auth-warning', '--rdb', '-'],
      { env: { REDISCLI_AUTH: PASSWORD } },
    );
    const usedMb = await session(source, async (client) => {
      const info = await client.info('memory');
      return Number(/used_memory:(\d+)/.exec(info)?.[1]) / MB;
    });
    // Watch the command lines of redis-cli while it runs. The agent's redis.conf has Redis send
    // the snapshot at once, over in a fraction of a second here: for this backup Redis waits
    // 1 s first (repl-diskless-sync-delay), so the watcher sees redis-cli on any machine (the
    // pipeline time reported below includes that second).
    await session(source, (client) => client.config('SET', 'repl-diskless-sync-delay', '1'));
    const seen: string[] = [];
    const watch = setInterval(async () => {
      for (const pid of await toolChildren()) {
        if (!pid.endsWith(' redis-cli')) continue;
        const cmdline = await readFile(`/proc/${pid.split(' ')[0]}/cmdline`, 'utf8').catch(() => '');
        if (cmdline) seen.push(cmdline.replaceAll('\0', ' '));
      }
    }, 50);
    const m = await measure(() =>
      runBackup('redis', source, { bucket: BUCKET, key: fullKey, s3: s3.client }, dataKey, {}),
    ).finally(() => clearInterval(watch));
    await session(source, (client) => client.config('SET', 'repl-diskless-sync-delay', '0'));
    full = m.result;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((c) => c.includes(PASSWORD))).toEqual([]);
    expect(seen[0]).toContain('--rdb -');
    report('redis full (data: used_memory)', {
      dataMb: usedMb,
      rawSeconds,
      pipelineMs: m.ms,
      storedBytes: full.size_bytes,
      peakRssMb: m.peakRssMb,
      baseRssMb: m.baseRssMb,
    });
    expect(full.size_bytes).toBeGreaterThan(10 * MB);
    expect(await openUploads(s3)).toEqual([]);
    // Changed after the backup: must not show up in the restore.
    await session(source, (client) => client.flushall());
  });

  it('refuses incremental backups: an RDB is always the whole dataset', async () => {
    const err = await rejection(
      runBackup('redis', source, { bucket: BUCKET, key: `${fullKey}.inc`, s3: s3.client }, dataKey, {
        parentLsn: '1',
      }),
      /Incremental backups are not supported/,
    );
    expect(err.name).toBe('NotImplemented');
  });

  it('restores the full backup into a new instance', async () => {
    const layout = await newLayout('redis');
    const manager = new RedisManager(layout);
    restored.push({ layout, manager });
    const { ms } = await measure(() =>
      restoreBackup('redis', layout, [chainObject(fullKey, full.checksum, dataKey)], s3.client),
    );
    console.log(`[restore redis] restored in ${(ms / 1000).toFixed(2)} s`);
    await manager.prepare(options);
    expect(await manager.status()).toBe('healthy');
    expect(await dataChecksum(layout)).toBe(afterFull);
  });

  it('refuses a corrupted or missing object before writing anything', async () => {
    await corruptCopy(s3, fullKey, `${fullKey}.corrupt`);
    const layout = await newLayout('redis');
    restored.push({ layout, manager: new RedisManager(layout) });
    await rejection(
      restoreBackup('redis', layout, [chainObject(`${fullKey}.corrupt`, full.checksum, dataKey)], s3.client),
      /failed its checksum/,
    );
    expect(await entriesOf(layout.baseDir)).toEqual([]);
    await rejection(
      restoreBackup('redis', layout, [chainObject(`${fullKey}.missing`, full.checksum, dataKey)], s3.client),
      /does not exist/,
    );
    expect(await entriesOf(layout.baseDir)).toEqual([]);
  });

  it('leaves no upload open and no tool running when aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled before it started'));
    await rejection(
      runBackup('redis', source, { bucket: BUCKET, key: `${fullKey}.aborted`, s3: s3.client }, dataKey, {
        signal: controller.signal,
      }),
      /cancelled before it started/,
    );
    expect(await openUploads(s3)).toEqual([]);
    expect(await toolChildren()).toEqual([]);
  });
});
