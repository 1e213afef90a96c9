import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { processesIn, signal, waitFor } from '../../../agent/engines/process.ts';
import { installPostgresqlVersions } from '../../../local/postgresql-versions.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';

// The guest's side of Trove's upgrade on real engines: 15 → 16 (dump and restore: no pg_upgrade
// 16 exists here) → 17 (pg_upgrade 17 would need 16's pg_resetwal: dump and restore again), and
// 15 → 17 by pg_upgrade, whose process is killed half-way once: the old version comes back on its
// old data, and the error names the step.

async function superuser(layout: EngineLayout, database = 'appdb'): Promise<pg.Client> {
  const client = new pg.Client({
    host: join(layout.baseDir, 'run'),
    port: layout.port,
    user: 'postgres',
    database,
  });
  await client.connect();
  return client;
}

async function checksum(layout: EngineLayout): Promise<string> {
  const c = await superuser(layout);
  try {
    const { rows } = await c.query<{ sum: string }>(
      "SELECT count(*) || ':' || md5(string_agg(k::text || '=' || v, ',' ORDER BY k)) AS sum FROM kv",
    );
    return rows[0]?.sum ?? '';
  } finally {
    await c.end();
  }
}

async function serverVersion(layout: EngineLayout): Promise<number> {
  const c = await superuser(layout);
  try {
    return Math.floor(Number((await c.query('SHOW server_version_num')).rows[0]?.server_version_num) / 10000);
  } finally {
    await c.end();
  }
}

describe('postgresql major-version upgrade (agent)', () => {
  let layout: EngineLayout;
  let manager: PostgresqlManager;
  let known = '';

  beforeAll(async () => {
    await installPostgresqlVersions(() => {});
    layout = { ...(await tempLayout('pg-upgrade')), datastoreVersion: '15' };
    manager = new PostgresqlManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [{ name: 'appdb' }], users: [] });
    const c = await superuser(layout);
    await c.query('CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL)');
    await c.query('INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
    await c.end();
    known = await checksum(layout);
  }, 120_000);
  afterAll(async () => {
    await stopAndRemove(manager, layout);
  });

  it('15 → 17 by pg_upgrade killed half-way: 15 again on its data, the step named', async () => {
    const killer = waitFor(
      'pg_upgrade to run',
      async () => {
        for (const dir of [join(layout.baseDir, 'run')]) {
          const pids = await processesIn(dir);
          for (const pid of pids) {
            const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
            if (cmd.includes('pg_upgrade')) {
              signal(pid, 'SIGKILL');
              return true;
            }
          }
        }
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    await expect(manager.upgrade('17')).rejects.toMatchObject({ name: 'UpgradeFailed', step: 'pg_upgrade' });
    await killer;
    expect(await manager.status()).toBe('healthy');
    expect(await serverVersion(layout)).toBe(15);
    expect(await checksum(layout)).toBe(known);
  });

  it('15 → 16 → 17: each version serves the same data', async () => {
    expect(await manager.upgrade('16')).toMatchObject({ from: '15', to: '16', method: 'dump', rows: 20000 });
    expect(await serverVersion(layout)).toBe(16);
    expect(await checksum(layout)).toBe(known);
    expect(await manager.upgrade('17')).toMatchObject({ from: '16', to: '17', method: 'dump' });
    expect(await serverVersion(layout)).toBe(17);
    expect(await checksum(layout)).toBe(known);
    await manager.restart();
    expect(await checksum(layout)).toBe(known);
  }, 180_000);
});
