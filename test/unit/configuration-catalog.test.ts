import { describe, expect, it } from 'vitest';
import { type ParameterManager, parameterRules } from '../../lib/configurations/parameters/index.ts';

// The parameter catalog's shape; whether it matches the engines is checked against the real ones
// in test/integration/engines/*-parameters.test.ts.

const least: Record<ParameterManager, number> = { mysql: 30, mariadb: 30, postgresql: 30, redis: 15 };

describe.each(Object.entries(least) as [ParameterManager, number][])('%s parameters', (manager, count) => {
  const rules = parameterRules(manager);

  it(`has at least ${count} rules with unique names`, () => {
    expect(rules.length).toBeGreaterThanOrEqual(count);
    const names = rules.map((r) => r.name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
  });

  it('has valid types, flags and bounds', () => {
    for (const rule of rules) {
      const where = `${manager} ${rule.name}`;
      expect(['integer', 'float', 'string', 'boolean'], where).toContain(rule.type);
      expect(typeof rule.restart_required, where).toBe('boolean');
      expect(rule.name, where).toMatch(/^[a-z][a-z0-9_-]*$/);
      if (rule.type === 'integer' || rule.type === 'float') {
        expect(rule.min, where).toBeTypeOf('number');
        expect(rule.max, where).toBeTypeOf('number');
        expect(rule.min as number, where).toBeLessThanOrEqual(rule.max as number);
        // Trove's API shows bounds as JSON integers; they must also survive JSON exactly.
        expect(Number.isSafeInteger(rule.min), where).toBe(true);
        expect(Number.isSafeInteger(rule.max), where).toBe(true);
      } else {
        expect(rule.min, where).toBeUndefined();
        expect(rule.max, where).toBeUndefined();
      }
    }
  });

  it('has dynamic and restart-only parameters', () => {
    expect(rules.some((r) => r.restart_required)).toBe(true);
    expect(rules.some((r) => !r.restart_required)).toBe(true);
  });
});

describe('parameterRules', () => {
  it('serves Trove\'s "mysql" from the MariaDB catalog', () => {
    expect(parameterRules('mysql')).toEqual(parameterRules('mariadb'));
  });

  it('describes the installed engines, not MySQL 5.7', () => {
    const mariadb = new Map(parameterRules('mariadb').map((r) => [r.name, r]));
    expect(mariadb.get('innodb_log_file_size')?.restart_required).toBe(false);
    expect(mariadb.get('innodb_buffer_pool_size')?.restart_required).toBe(false);
    expect(mariadb.get('back_log')?.restart_required).toBe(true);
    expect(mariadb.has('innodb_buffer_pool_instances')).toBe(false);
    expect(mariadb.get('slow_query_log')?.type).toBe('boolean');
    const pg = new Map(parameterRules('postgresql').map((r) => [r.name, r]));
    expect(pg.get('max_connections')?.restart_required).toBe(true);
    expect(pg.get('work_mem')?.restart_required).toBe(false);
  });

  it('hands out copies: callers cannot change the catalog', () => {
    const first = parameterRules('redis');
    (first[0] as { name: string }).name = 'changed';
    first.pop();
    expect(parameterRules('redis')[0]?.name).not.toBe('changed');
    expect(parameterRules('redis').length).toBe(first.length + 1);
  });

  it('names an unknown manager', () => {
    expect(() => parameterRules('mongodb' as ParameterManager)).toThrow(/mongodb/);
  });
});
