import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { parameterRules } from '../../../lib/configurations/parameters/index.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';
import { describeOverrides, describeWholeCatalog } from './overrides.ts';

// The MariaDB parameter catalog against MariaDB 10.11 itself, and configuration groups applied
// to a real instance.

const ER_INCORRECT_GLOBAL_LOCAL_VAR = 1238; // "Variable '...' is a read only variable"

/** Which information_schema VARIABLE_TYPEs each rule type stands for. */
const TYPES: Record<string, RegExp> = {
  integer: /^(INT|BIGINT)( UNSIGNED)?$/,
  float: /^DOUBLE$/,
  boolean: /^BOOLEAN$/,
  string: /^(ENUM|SET|VARCHAR)$/,
};

describe('mariadb parameter catalog', () => {
  const rules = parameterRules('mariadb');
  let layout: EngineLayout;
  let manager: MariaDbManager;
  let conn: mysql.Connection;

  beforeAll(async () => {
    layout = await tempLayout('mariadb-params');
    manager = new MariaDbManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [], users: [] });
    // root@localhost over the socket, as the agent itself (unix_socket authentication).
    conn = await mysql.createConnection({
      socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
      user: 'root',
    });
  });
  afterAll(async () => {
    await conn?.end();
    await stopAndRemove(manager, layout);
  });

  it('names variables MariaDB has, with matching types, read-only flags and bounds', async () => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT LOWER(VARIABLE_NAME) AS name, VARIABLE_TYPE AS type, READ_ONLY AS readOnly,
              NUMERIC_MIN_VALUE AS min, NUMERIC_MAX_VALUE AS max
         FROM information_schema.SYSTEM_VARIABLES WHERE LOWER(VARIABLE_NAME) IN (?)`,
      [rules.map((r) => r.name)],
    );
    const vars = new Map(rows.map((r) => [String(r.name), r]));
    for (const rule of rules) {
      const v = vars.get(rule.name);
      expect(v, rule.name).toBeDefined();
      expect(v?.type, rule.name).toMatch(TYPES[rule.type] as RegExp);
      expect(v?.readOnly === 'YES', `${rule.name} restart_required`).toBe(rule.restart_required);
      if (rule.min !== undefined) expect(rule.min, `${rule.name} min`).toBeGreaterThanOrEqual(Number(v?.min));
      if (rule.max !== undefined) expect(rule.max, `${rule.name} max`).toBeLessThanOrEqual(Number(v?.max));
    }
  });

  it('takes SET GLOBAL to the current value exactly for the dynamic rules', async () => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT LOWER(VARIABLE_NAME) AS name, VARIABLE_TYPE AS type, GLOBAL_VALUE AS value
         FROM information_schema.SYSTEM_VARIABLES WHERE LOWER(VARIABLE_NAME) IN (?)`,
      [rules.map((r) => r.name)],
    );
    const vars = new Map(rows.map((r) => [String(r.name), r]));
    for (const rule of rules) {
      const { type, value } = vars.get(rule.name) as mysql.RowDataPacket;
      // Numeric variables refuse quoted numbers: the reported digits go in as a checked literal.
      const literal = /INT|DOUBLE/.test(type) ? mysql.raw(String(Number(value))) : String(value ?? '');
      const outcome = await conn.query(mysql.format('SET GLOBAL ?? = ?', [rule.name, literal])).then(
        () => 'taken',
        (err: { errno?: number }) =>
          err.errno === ER_INCORRECT_GLOBAL_LOCAL_VAR ? 'read only' : String(err),
      );
      expect(outcome, rule.name).toBe(rule.restart_required ? 'read only' : 'taken');
    }
  });
});

describeWholeCatalog({ name: 'mariadb', manager: 'mariadb', make: (layout) => new MariaDbManager(layout) });

describeOverrides({
  name: 'mariadb',
  manager: 'mariadb',
  make: (layout) => new MariaDbManager(layout),
  dynamic: { name: 'max_connections', value: 150, shown: '150' },
  restartOnly: { name: 'back_log', value: 120, shown: '120' },
  refused: { max_connections: 200, innodb_flush_method: 'bogus' },
  configFiles: async (layout) =>
    [
      await readFile(join(layout.baseDir, 'my.cnf'), 'utf8'),
      await readFile(join(layout.baseDir, 'overrides.cnf'), 'utf8'),
    ].join('\n'),
  extra: (current) => {
    it('sets booleans as ON/OFF and strings escaped, and empties the included file on removal', async () => {
      const { manager, layout } = current();
      const rules = parameterRules('mariadb');
      const names = ['slow_query_log', 'sql_mode', 'long_query_time'];
      const before = await manager.currentValues(names);
      const mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';
      await manager.applyOverrides({ slow_query_log: true, sql_mode: mode, long_query_time: 2.5 }, rules);
      expect(await manager.currentValues(names)).toEqual({
        slow_query_log: 'ON',
        sql_mode: mode,
        long_query_time: '2.500000',
      });
      const file = await readFile(join(layout.baseDir, 'overrides.cnf'), 'utf8');
      expect(file).toContain('slow_query_log = ON');
      expect(file).toContain(`sql_mode = "${mode}"`);
      await manager.restart();
      expect(await manager.currentValues(names)).toMatchObject({ slow_query_log: 'ON', sql_mode: mode });
      await manager.removeOverrides(rules);
      expect(await manager.currentValues(names)).toEqual(before);
      expect(await readFile(join(layout.baseDir, 'overrides.cnf'), 'utf8')).not.toMatch(/=/);
    });
  },
});
