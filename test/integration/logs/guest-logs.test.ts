import { readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { waitFor } from '../../../agent/engines/process.ts';
import { RedisManager } from '../../../agent/engines/redis.ts';
import { GuestLogs, type LogView } from '../../../agent/logs/index.ts';
import { logRoot } from '../../../lib/logs/layout.ts';
import { removeSuperseded, uploadGrant } from '../../../lib/logs/objects.ts';
import { waitUntil } from '../../../local/wait.ts';
import { type S3Fixture, startS3 } from '../backup/s3-fixture.ts';
import { stopAndRemove, tempLayout } from '../engines/helpers.ts';

// The guest's log publishing (Trove's guest_log_list / guest_log_action) against real engines and
// a real S3 server: the engine's own setting switches a log, a publish uploads only what is new,
// in objects that carry their line count, a rotation starts over, discard leaves nothing.

const BUCKET = 'logs';
const PROJECT = 'project-a';
const ROOT = logRoot(PROJECT);

function order(extra: Record<string, unknown> = {}) {
  return {
    root: ROOT,
    limit_bytes: 1_000_000,
    chunk_bytes: 1_000_000,
    expiry_seconds: 2_592_000,
    exposed: null,
    ...extra,
  };
}

/** Every published object of a log, oldest first, with its text and its `lines` metadata. */
async function published(s3: S3Fixture, view: LogView) {
  const listed = await s3.client.send(
    new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${ROOT}${view.prefix}` }),
  );
  const out: { key: string; text: string; lines: number }[] = [];
  for (const o of listed.Contents ?? []) {
    const key = o.Key as string;
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    const body = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    out.push({
      key,
      text: await (body.Body?.transformToString() ?? ''),
      lines: Number(head.Metadata?.lines),
    });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

async function keysUnder(s3: S3Fixture, prefix: string): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key as string);
}

interface Logs {
  list(order: Record<string, unknown>): Promise<LogView[]>;
  action(order: Record<string, unknown>): Promise<LogView>;
}

/**
 * The guest's logs as the API drives them (lib/logs/service.ts): an order that may publish
 * carries an upload grant for the instance's prefix, and what the answer says a discard or a
 * rotation superseded is deleted by the control plane, not by the guest.
 */
function logsOf(manager: ProcessEngine, layout: EngineLayout, s3: S3Fixture, engine: string): Logs {
  const instanceId = `inst-${engine}`;
  const guest = new GuestLogs(
    manager.guestLogs(),
    { instanceId, manager: engine },
    join(layout.baseDir, 'guest-logs.json'),
  );
  const bucket = { client: s3.client, name: BUCKET };
  return {
    list: (o) => guest.list(o),
    async action(o) {
      const upload = o.publish ? await uploadGrant(PROJECT, instanceId, 1_000_000, 300, bucket) : undefined;
      const { superseded, ...view } = await guest.action({ ...o, ...(upload ? { upload } : {}) });
      if (superseded) await removeSuperseded(PROJECT, instanceId, engine, String(o.name), superseded, bucket);
      return view;
    },
  };
}

let s3: S3Fixture;
beforeAll(async () => {
  s3 = await startS3([BUCKET]);
});
afterAll(async () => {
  await s3?.stop();
});

describe('mariadb guest logs', () => {
  let layout: EngineLayout;
  let manager: MariaDbManager;
  let logs: Logs;
  // A session's last line in the general log, its Quit, is written once the server has taken the
  // client's goodbye, which the client does not wait for: a publish right after could find it
  // (Partial) or not (Published). With the log on, the statement is done once its Quit is there.
  const sql = async (statement: string) => {
    const conn = await mysql.createConnection({
      socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
      user: 'root',
    });
    const { threadId } = conn;
    try {
      await conn.query(statement);
    } finally {
      await conn.end();
    }
    const general = join(layout.baseDir, 'logs', 'general.log');
    const text = async () => readFile(general, 'utf8').catch(() => '');
    // Its Connect line is there (written before the statement ran) only when the log is on.
    if (!new RegExp(`\\s${threadId} Connect\\s`).test(await text())) return;
    const quit = new RegExp(`\\s${threadId} Quit\\b`);
    await waitUntil(`session ${threadId}'s Quit in the general log`, async () =>
      quit.test(await text()) ? true : undefined,
    );
  };

  beforeAll(async () => {
    layout = await tempLayout('logs-mariadb');
    manager = new MariaDbManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [{ name: 'app' }], users: [] });
    logs = logsOf(manager, layout, s3, 'mysql');
  }, 120_000);
  afterAll(() => stopAndRemove(manager, layout));

  it('lists general, slow_query (USER, off) and error (SYS) as Trove shows them', async () => {
    const list = await logs.list(order());
    expect(list.map((l) => [l.name, l.type, l.status])).toEqual([
      ['general', 'USER', 'Disabled'],
      ['slow_query', 'USER', 'Disabled'],
      ['error', 'SYS', 'Ready'],
    ]);
    expect(list[0]).toMatchObject({
      published: 0,
      pending: 0,
      container: 'None',
      prefix: 'None',
      metafile: 'inst-mysql/mysql-general_metafile',
    });
    // Trove's guest_log_exposed_logs: a non-admin sees only the exposed ones.
    expect((await logs.list(order({ exposed: ['general'] }))).map((l) => l.name)).toEqual(['general']);
  });

  it('refuses what Trove refuses', async () => {
    await expect(logs.action(order({ name: 'general', enable: 1, disable: 1 }))).rejects.toMatchObject({
      name: 'BadRequest',
      message: "Cannot enable and disable log 'general'.",
    });
    await expect(logs.action(order({ name: 'error', disable: 1 }))).rejects.toMatchObject({
      name: 'BadRequest',
      message: "Cannot disable a SYSTEM log ('error').",
    });
    await expect(logs.action(order({ name: 'audit' }))).rejects.toMatchObject({
      name: 'LogNotFound',
      message: "Log 'audit' is not defined.",
    });
    await expect(
      logs.action(order({ name: 'error', publish: 1, exposed: ['general'] })),
    ).rejects.toMatchObject({
      name: 'LogAccessForbidden',
    });
  });

  it('enables the general log in the engine, publishes the statements, then only what is new', async () => {
    // mariadbd starts the file with its own header lines: there is something to publish at once.
    const enabled = await logs.action(order({ name: 'general', enable: 1 }));
    expect(enabled.status).toBe('Ready');
    await sql("SELECT 'first-marker-17'");
    const ready = await logs.action(order({ name: 'general' }));
    expect(ready.status).toBe('Ready');
    expect(ready.pending).toBeGreaterThan(0);

    const first = await logs.action(order({ name: 'general', publish: 1 }));
    expect(first).toMatchObject({
      status: 'Published',
      pending: 0,
      container: 'database_logs',
      prefix: 'inst-mysql/mysql-general/',
    });
    const once = await published(s3, first);
    expect(once).toHaveLength(1);
    expect(once[0]?.text).toContain("SELECT 'first-marker-17'");
    expect(once[0]?.lines).toBe((once[0]?.text ?? '').split('\n').length - 1);
    expect(first.published).toBe(once[0]?.text.length);
    // The metafile sits beside the prefix, not under it.
    expect(await keysUnder(s3, `${ROOT}inst-mysql/mysql-general_metafile`)).toHaveLength(1);

    await sql("SELECT 'second-marker-42'");
    expect((await logs.action(order({ name: 'general' }))).status).toBe('Partial');
    const second = await logs.action(order({ name: 'general', publish: 1 }));
    const twice = await published(s3, second);
    expect(twice).toHaveLength(2);
    expect(twice[0]?.text).toBe(once[0]?.text);
    expect(twice[1]?.text).toContain("SELECT 'second-marker-42'");
    expect(twice[1]?.text).not.toContain('first-marker-17');
    expect(second.published).toBe(twice.reduce((n, o) => n + o.text.length, 0));
    // The file is what was published, in order.
    const file = await readFile(join(layout.baseDir, 'logs', 'general.log'), 'utf8');
    expect(file.startsWith(twice.map((o) => o.text).join(''))).toBe(true);
  });

  it('keeps the agent’s own statements out of the general log', async () => {
    await logs.action(order({ name: 'general', enable: 1 }));
    const text = await readFile(join(layout.baseDir, 'logs', 'general.log'), 'utf8');
    expect(text).not.toContain('@@GLOBAL.general_log');
  });

  it('publishes at most the limit per call, in objects of at most the chunk size, whole lines', async () => {
    for (let i = 0; i < 40; i++) await sql(`SELECT 'limit-line-${i}-${'x'.repeat(100)}'`);
    const before = await logs.action(order({ name: 'general' }));
    const view = await logs.action(
      order({ name: 'general', publish: 1, limit_bytes: 2000, chunk_bytes: 700 }),
    );
    const added = view.published - before.published;
    expect(added).toBeLessThanOrEqual(2000);
    expect(added).toBeGreaterThan(1000);
    expect(view.status).toBe('Partial');
    const objects = (await published(s3, view)).slice(-Math.ceil(added / 200));
    const fresh = objects.filter((o) => o.text.includes('limit-line'));
    for (const o of fresh) {
      expect(o.text.length).toBeLessThanOrEqual(700);
      expect(o.text.endsWith('\n')).toBe(true);
    }
    const rest = await logs.action(order({ name: 'general', publish: 1 }));
    expect(rest.status).toBe('Published');
  });

  it('shows a rotated log as Rotated and starts over on the next publish', async () => {
    const file = join(layout.baseDir, 'logs', 'general.log');
    await truncate(file, 0); // logrotate's copytruncate; mariadbd appends, so it goes on writing
    await sql("SELECT 'after-rotation-99'");
    const before = (await readFile(file)).length;
    const rotated = await logs.action(order({ name: 'general' }));
    expect(rotated.status).toBe('Rotated');
    // pending is the whole (new) file, not the difference from what was published.
    expect(rotated.pending).toBeGreaterThanOrEqual(before);
    expect(rotated.pending).toBeLessThan(rotated.published);
    const fresh = await logs.action(order({ name: 'general', publish: 1 }));
    expect(fresh.status).toMatch(/^(Published|Partial)$/);
    const objects = await published(s3, fresh);
    expect((await readFile(file, 'utf8')).startsWith(objects.map((o) => o.text).join(''))).toBe(true);
    expect(objects.map((o) => o.text).join('')).toContain('after-rotation-99');
    expect(objects.map((o) => o.text).join('')).not.toContain('first-marker-17');
  });

  it('discards everything that was published, and disables the engine’s log', async () => {
    const view = await logs.action(order({ name: 'general', discard: 1, disable: 1 }));
    expect(view).toMatchObject({ status: 'Disabled', published: 0, container: 'None', prefix: 'None' });
    expect(await keysUnder(s3, `${ROOT}inst-mysql/mysql-general`)).toEqual([]);
    const conn = await mysql.createConnection({
      socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
      user: 'root',
    });
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.general_log AS v');
    await conn.end();
    expect(rows[0]?.v).toBe(0);
  });

  it('counts connections and statements for the heartbeat’s metrics', async () => {
    const before = await manager.counters();
    const conn = await mysql.createConnection({
      socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
      user: 'root',
    });
    for (let i = 0; i < 50; i++) await conn.query('SELECT 1');
    const during = await manager.counters();
    await conn.end();
    expect(during.connections).toBe((before.connections ?? 0) + 1);
    expect((during.queries ?? 0) - (before.queries ?? 0)).toBeGreaterThanOrEqual(50);
    expect(during.replication_lag_seconds).toBeNull();
  });

  it('asks for the heartbeat’s counters on one kept session: no line in the general log per heartbeat', async () => {
    await manager.counters();
    await logs.action(order({ name: 'general', enable: 1 }));
    const file = join(layout.baseDir, 'logs', 'general.log');
    const from = (await readFile(file)).length;
    for (let i = 0; i < 5; i++) await manager.counters();
    const added = (await readFile(file)).subarray(from).toString('utf8');
    expect(added).not.toMatch(/Connect|Threads_connected/);
    await logs.action(order({ name: 'general', disable: 1 }));
  });

  it('keeps an enabled log on across a restart (logs.cnf)', async () => {
    await logs.action(order({ name: 'slow_query', enable: 1 }));
    await manager.counters();
    await manager.restart();
    // The heartbeat's kept session went with the engine: the next one opens a fresh one.
    expect((await manager.counters()).queries).toBeGreaterThan(0);
    expect((await logs.action(order({ name: 'slow_query' }))).status).not.toBe('Disabled');
    await sql('SELECT SLEEP(1.2)');
    const view = await logs.action(order({ name: 'slow_query', publish: 1 }));
    expect((await published(s3, view)).map((o) => o.text).join('')).toContain('SELECT SLEEP(1.2)');
  });
});

describe('postgresql guest logs', () => {
  let layout: EngineLayout;
  let manager: PostgresqlManager;
  let logs: Logs;

  beforeAll(async () => {
    layout = await tempLayout('logs-pg');
    manager = new PostgresqlManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [{ name: 'app' }], users: [] });
    logs = logsOf(manager, layout, s3, 'postgresql');
  }, 120_000);
  afterAll(() => stopAndRemove(manager, layout));

  it('enables log_statement live and publishes the statements of a new session', async () => {
    expect((await logs.list(order())).map((l) => [l.name, l.type, l.status])).toEqual([
      ['general', 'USER', 'Disabled'],
      ['slow_query', 'USER', 'Disabled'],
      ['error', 'SYS', 'Ready'],
    ]);
    expect((await logs.action(order({ name: 'general', enable: 1 }))).status).not.toBe('Disabled');
    const client = new pg.Client({
      host: join(layout.baseDir, 'run'),
      port: layout.port,
      user: 'postgres',
      database: 'app',
    });
    await client.connect();
    await client.query("SELECT 'pg-marker-5'");
    await client.end();
    const first = await logs.action(order({ name: 'general', publish: 1 }));
    expect(first.status).toBe('Published');
    const text = (await published(s3, first)).map((o) => o.text).join('');
    expect(text).toContain("statement: SELECT 'pg-marker-5'");
    // The agent's own sessions are not in it.
    expect(text).not.toContain('pg_settings');
    const off = await logs.action(order({ name: 'general', disable: 1 }));
    expect(off.status).toBe('Disabled');
  });

  it('counts client backends and transactions for the heartbeat’s metrics', async () => {
    const before = await manager.counters();
    const client = new pg.Client({
      host: join(layout.baseDir, 'run'),
      port: layout.port,
      user: 'postgres',
      database: 'app',
    });
    await client.connect();
    for (let i = 0; i < 20; i++) await client.query('SELECT 1');
    // PostgreSQL flushes a session's transaction counts to pg_stat_database about once a second.
    const during = await waitFor(
      'the transactions counted',
      async () => {
        const now = await manager.counters();
        return (now.queries ?? 0) - (before.queries ?? 0) >= 20 ? now : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    await client.end();
    expect(during.connections).toBe((before.connections ?? 0) + 1);
    expect(during.replication_lag_seconds).toBeNull();
  });

  it('asks for the heartbeat’s counters on one kept session, opened again after a restart', async () => {
    const client = new pg.Client({ host: join(layout.baseDir, 'run'), port: layout.port, user: 'postgres' });
    const agentSessions = async () => {
      const { rows } = await client.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
      );
      return rows.map((r) => r.pid);
    };
    await client.connect();
    try {
      await manager.counters();
      const kept = await agentSessions();
      expect(kept).toHaveLength(1);
      for (let i = 0; i < 3; i++) await manager.counters();
      expect(await agentSessions()).toEqual(kept);
    } finally {
      await client.end();
    }
    await manager.restart();
    expect((await manager.counters()).queries).toBeGreaterThan(0);
  });
});

describe('redis guest logs', () => {
  let layout: EngineLayout;
  let manager: RedisManager;
  let logs: Logs;

  beforeAll(async () => {
    layout = await tempLayout('logs-redis');
    manager = new RedisManager(layout);
    await manager.prepare({ memoryMb: 128, databases: [], users: [] });
    logs = logsOf(manager, layout, s3, 'redis');
  }, 120_000);
  afterAll(() => stopAndRemove(manager, layout));

  it('renders SLOWLOG as lines and publishes only new entries', async () => {
    expect((await logs.list(order())).map((l) => [l.name, l.type])).toEqual([
      ['slow_query', 'USER'],
      ['error', 'SYS'],
    ]);
    await logs.action(order({ name: 'slow_query', enable: 1 }));
    const password = await readFile(join(layout.baseDir, 'admin-password'), 'utf8');
    const client = new Redis({ path: join(layout.baseDir, 'run', 'redis.sock'), password });
    await client.call('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
    await client.set('slow-key-1', 'v');
    const first = await logs.action(order({ name: 'slow_query', publish: 1 }));
    const once = (await published(s3, first)).map((o) => o.text).join('');
    expect(once).toContain('"slow-key-1"');
    await client.set('slow-key-2', 'v');
    const second = await logs.action(order({ name: 'slow_query', publish: 1 }));
    const objects = await published(s3, second);
    expect(objects).toHaveLength(2);
    expect(objects[1]?.text).toContain('"slow-key-2"');
    expect(objects[1]?.text).not.toContain('"slow-key-1"');
    // The test's own client is one connection (the agent's is left out).
    const counted = await manager.counters();
    expect(counted).toMatchObject({ connections: 1, replication_lag_seconds: null });
    expect(counted.queries).toBeGreaterThan(3);
    client.disconnect();
    const error = await logs.action(order({ name: 'error', publish: 1 }));
    expect((await published(s3, error)).map((o) => o.text).join('')).toMatch(/Ready to accept connections/);
  });
});
