import mysql from 'mysql2/promise';
import pg from 'pg';

// A client session on a SQL instance that commits numbered rows into a table `t (n)` and reads
// them back: what the failover and re-seed tests write through a set and look for afterwards.

export interface RowSession {
  write(n: number): Promise<void>;
  /** Every n in the table, in order. */
  rows(): Promise<number[]>;
  close(): Promise<void>;
}

export interface RowSessionOptions {
  user: { name: string; password: string };
  database: string;
  ssl: { ca: string; rejectUnauthorized: boolean; checkServerIdentity?: () => undefined };
  /** Makes the table: only on a writable member (a replica refuses even CREATE ... IF NOT EXISTS). */
  create: boolean;
  connectTimeoutMs: number;
  /** PostgreSQL's per-query bound (mysql2 has none per connection). */
  queryTimeoutMs?: number;
}

export async function openRowSession(
  datastore: 'mysql' | 'postgresql',
  at: { host: string; port: number },
  o: RowSessionOptions,
): Promise<RowSession> {
  if (datastore === 'mysql') {
    const c = await mysql.createConnection({
      host: at.host,
      port: at.port,
      ssl: o.ssl,
      user: o.user.name,
      password: o.user.password,
      database: o.database,
      connectTimeout: o.connectTimeoutMs,
    });
    c.on('error', () => {});
    if (o.create) await c.query('CREATE TABLE IF NOT EXISTS t (n INT PRIMARY KEY)');
    return {
      write: async (n) => {
        await c.query('INSERT INTO t VALUES (?)', [n]);
      },
      rows: async () => ((await c.query('SELECT n FROM t ORDER BY n'))[0] as { n: number }[]).map((r) => r.n),
      close: async () => c.destroy(),
    };
  }
  const c = new pg.Client({
    host: at.host,
    port: at.port,
    ssl: o.ssl,
    user: o.user.name,
    password: o.user.password,
    database: o.database,
    connectionTimeoutMillis: o.connectTimeoutMs,
    ...(o.queryTimeoutMs ? { query_timeout: o.queryTimeoutMs } : {}),
  });
  c.on('error', () => {});
  await c.connect();
  if (o.create) await c.query('CREATE TABLE IF NOT EXISTS t (n int PRIMARY KEY)');
  return {
    write: async (n) => {
      await c.query('INSERT INTO t VALUES ($1)', [n]);
    },
    rows: async () => (await c.query<{ n: number }>('SELECT n FROM t ORDER BY n')).rows.map((r) => r.n),
    close: async () => c.end().catch(() => {}),
  };
}
