import { id, type MariaDbSession } from './mariadb-session.ts';
import type { Fingerprint } from './upgrade.ts';

// The data's fingerprint that a MariaDB upgrade (MariaDbManager.upgrade) compares before and
// after: every base table of every database but the server's own, its row count and CHECKSUM
// TABLE ... EXTENDED (the whole rows read and hashed, whatever the engine; the same function in
// every build of a line), so a changed, lost or added row changes it.

const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

export async function mariadbFingerprint(s: MariaDbSession): Promise<Fingerprint> {
  const tables = await s.rows(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (?) ORDER BY 1, 2`,
    [SYSTEM_SCHEMAS],
  );
  const out: Fingerprint = {};
  for (const { db, name } of tables) {
    const table = `${id(String(db))}.${id(String(name))}`;
    const [count] = await s.rows(`SELECT COUNT(*) AS n FROM ${table}`);
    const [sum] = await s.rows(`CHECKSUM TABLE ${table} EXTENDED`);
    out[`${db}.${name}`] = { rows: Number(count?.n ?? 0), hash: String(sum?.Checksum ?? '') };
  }
  return out;
}
