import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { PostgresqlManager } from '../../../agent/engines/postgresql.ts';
import { POSTGRESQL_VERSIONS } from '../../../lib/catalog/postgresql-versions.ts';
import { parameterRules } from '../../../lib/configurations/parameters/index.ts';
import { ensurePostgresqlVersions } from '../../../local/prerequisites.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';
import { describeOverrides, describeWholeCatalog } from './overrides.ts';

// The PostgreSQL parameter catalog against each served version's own pg_settings (15, 16, 17),
// and configuration groups applied to a real instance.

/** Which pg_settings vartypes each rule type stands for. */
const VARTYPES: Record<string, string[]> = {
  integer: ['integer'],
  float: ['real'],
  boolean: ['bool'],
  string: ['string', 'enum'],
};

/** The agent's own superuser session (peer authentication over the socket). */
async function superuser(layout: EngineLayout): Promise<pg.Client> {
  const client = new pg.Client({
    host: join(layout.baseDir, 'run'),
    port: layout.port,
    user: 'postgres',
    database: 'postgres',
  });
  await client.connect();
  return client;
}

describe.each(POSTGRESQL_VERSIONS.map((v) => v.name))('postgresql %s parameter catalog', (version) => {
  const rules = parameterRules('postgresql');
  let layout: EngineLayout;
  let manager: PostgresqlManager;
  let client: pg.Client;

  beforeAll(async () => {
    await ensurePostgresqlVersions();
    layout = { ...(await tempLayout('postgresql-params')), datastoreVersion: version };
    manager = new PostgresqlManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [], users: [] });
    client = await superuser(layout);
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    expect(Math.floor(Number(rows[0]?.v) / 10_000)).toBe(Number(version));
  });
  afterAll(async () => {
    await client?.end();
    await stopAndRemove(manager, layout);
  });

  it('names settings PostgreSQL has: restart iff postmaster, same type, bounds within its own', async () => {
    const { rows } = await client.query<{
      name: string;
      context: string;
      vartype: string;
      min_val: string | null;
      max_val: string | null;
    }>(
      'SELECT lower(name) AS name, context, vartype, min_val, max_val FROM pg_settings WHERE lower(name) = ANY($1)',
      [rules.map((r) => r.name)],
    );
    const settings = new Map(rows.map((r) => [r.name, r]));
    for (const rule of rules) {
      const s = settings.get(rule.name);
      expect(s, rule.name).toBeDefined();
      expect(s?.context === 'postmaster', `${rule.name} restart_required (${s?.context})`).toBe(
        rule.restart_required,
      );
      expect(VARTYPES[rule.type], `${rule.name} type`).toContain(s?.vartype);
      if (rule.min !== undefined)
        expect(rule.min, `${rule.name} min`).toBeGreaterThanOrEqual(Number(s?.min_val));
      if (rule.max !== undefined)
        expect(rule.max, `${rule.name} max`).toBeLessThanOrEqual(Number(s?.max_val));
    }
  });
});

describeWholeCatalog({
  name: 'postgresql',
  manager: 'postgresql',
  make: (layout) => new PostgresqlManager(layout),
});

describeOverrides({
  name: 'postgresql',
  manager: 'postgresql',
  make: (layout) => new PostgresqlManager(layout),
  dynamic: { name: 'work_mem', value: 8192, shown: '8192' },
  restartOnly: { name: 'max_connections', value: 150, shown: '150' },
  // ALTER SYSTEM takes work_mem, then refuses shared_buffers: work_mem must be put back.
  refused: { work_mem: 16384, shared_buffers: 'lots' },
  configFiles: async (layout) =>
    [
      await readFile(join(layout.baseDir, 'data', 'troveless.conf'), 'utf8'),
      await readFile(join(layout.baseDir, 'data', 'postgresql.auto.conf'), 'utf8'),
    ].join('\n'),
  extra: (current) => {
    it('writes booleans and strings as PostgreSQL literals, and they survive a restart', async () => {
      const { manager } = current();
      const rules = parameterRules('postgresql');
      const names = [
        'log_lock_waits',
        'timezone',
        'default_transaction_isolation',
        'checkpoint_completion_target',
      ];
      const before = await manager.currentValues(names);
      // A value is always one literal: quotes in it reach PostgreSQL as data, never as SQL.
      await expect(manager.applyOverrides({ timezone: "UTC'; SELECT 1; --" }, rules)).rejects.toMatchObject({
        name: 'BadRequest',
        message: expect.stringMatching(/invalid value for parameter/),
      });
      const values = {
        log_lock_waits: true,
        TimeZone: 'America/St_Johns',
        default_transaction_isolation: 'repeatable read',
        checkpoint_completion_target: 0.5,
      };
      expect(await manager.applyOverrides(values, rules)).toEqual({ restartRequired: false });
      const overridden = {
        log_lock_waits: 'on',
        timezone: 'America/St_Johns',
        default_transaction_isolation: 'repeatable read',
        checkpoint_completion_target: '0.5',
      };
      expect(await manager.currentValues(names)).toEqual(overridden);
      await manager.restart();
      expect(await manager.currentValues(names)).toEqual(overridden);
      await manager.removeOverrides(rules);
      expect(await manager.currentValues(names)).toEqual(before);
    });

    it('reports the flavor defaults in pg_settings units', async () => {
      const { manager } = current();
      // 256 MB of memory: shared_buffers is 64MB (8192 blocks of 8 kB), work_mem 2MB.
      expect(await manager.effectiveDefaults(['wal_buffers', 'jit'])).toMatchObject({
        shared_buffers: '8192',
        work_mem: '2048',
        max_connections: '50',
        wal_buffers: '-1',
        jit: 'on',
      });
    });
  },
});
