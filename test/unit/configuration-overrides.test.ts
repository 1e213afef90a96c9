import { describe, expect, it } from 'vitest';
import type { OverrideRule } from '../../agent/engines/manager.ts';
import { renderValue as mariadbValue } from '../../agent/engines/mariadb-overrides.ts';
import {
  nextState,
  type OverrideState,
  planOverrides,
  restartPending,
} from '../../agent/engines/overrides.ts';
import { inBaseUnit } from '../../agent/engines/pg-overrides.ts';

// The engine-independent part of applying configuration groups: which values are taken, what is
// remembered for undoing them, and when a restart is still due.

const rules: OverrideRule[] = [
  { name: 'max_connections', restart_required: false },
  { name: 'back_log', restart_required: true },
  { name: 'sql_mode', restart_required: false },
];
const empty = (): OverrideState => ({ values: {}, restartOnly: [], baseline: {}, started: {} });

describe('planOverrides', () => {
  it('matches names to rules without regard to case and splits dynamic from restart-only', () => {
    const plan = planOverrides({ MAX_CONNECTIONS: 150, back_log: 100 }, rules, empty());
    expect(plan.wanted).toEqual({ max_connections: 150, back_log: 100 });
    expect(plan.dynamic).toEqual(['max_connections']);
    expect(plan.restartOnly('back_log')).toBe(true);
  });

  it('lists what the new values drop', () => {
    const state = { ...empty(), values: { max_connections: 150, back_log: 100 } };
    const plan = planOverrides({}, rules, state);
    expect(plan.droppedDynamic).toEqual(['max_connections']);
    expect(plan.droppedRestartOnly).toEqual(['back_log']);
  });

  it('refuses unknown names, duplicates and values no config file can hold, as BadRequest', () => {
    const refused = [
      { nope: 1 },
      { max_connections: 1, MAX_CONNECTIONS: 2 },
      { sql_mode: 'a\nb' },
      { max_connections: Number.NaN },
      { max_connections: null },
    ];
    for (const values of refused) {
      expect(() => planOverrides(values as never, rules, empty())).toThrow(
        expect.objectContaining({ name: 'BadRequest' }),
      );
    }
    expect(() => planOverrides({ x: 1 }, [{ name: 'x;DROP', restart_required: false }], empty())).toThrow(
      expect.objectContaining({ name: 'BadRequest' }),
    );
  });
});

describe('override state', () => {
  it('remembers the value before the first override only', () => {
    const first = nextState(empty(), planOverrides({ max_connections: 150 }, rules, empty()), {
      max_connections: '100',
    });
    expect(first.baseline).toEqual({ max_connections: '100' });
    const second = nextState(first, planOverrides({ max_connections: 200 }, rules, first), {
      max_connections: '150',
    });
    expect(second.baseline).toEqual({ max_connections: '100' });
    const removed = nextState(second, planOverrides({}, rules, second), { max_connections: '200' });
    expect(removed.baseline).toEqual({});
  });

  it('wants a restart while a restart-only value differs from the one the engine started with', () => {
    const applied = nextState(empty(), planOverrides({ back_log: 120 }, rules, empty()), { back_log: '70' });
    expect(restartPending(applied, mariadbValue)).toBe(true);
    const started = { ...applied, started: { back_log: '120' } };
    expect(restartPending(started, mariadbValue)).toBe(false);
    const removed = nextState(started, planOverrides({}, rules, started), { back_log: '120' });
    expect(removed.baseline).toEqual({ back_log: '70' }); // kept until the next start
    expect(restartPending(removed, mariadbValue)).toBe(true);
    const dynamicOnly = nextState(empty(), planOverrides({ max_connections: 5 }, rules, empty()), {});
    expect(restartPending(dynamicOnly, mariadbValue)).toBe(false);
  });
});

describe('MariaDB option values', () => {
  it('writes booleans as ON/OFF and quotes strings with escapes', () => {
    expect(mariadbValue(true)).toBe('ON');
    expect(mariadbValue(1.5)).toBe('1.5');
    expect(mariadbValue('a"b\\c')).toBe('"a\\"b\\\\c"');
  });
});

describe('PostgreSQL config values in pg_settings units', () => {
  it('converts memory and time units', () => {
    expect(inBaseUnit('128MB', { unit: '8kB', vartype: 'integer' })).toBe('16384');
    expect(inBaseUnit('4MB', { unit: 'kB', vartype: 'integer' })).toBe('4096');
    expect(inBaseUnit('5min', { unit: 's', vartype: 'integer' })).toBe('300');
    expect(inBaseUnit('1GB', { unit: 'MB', vartype: 'integer' })).toBe('1024');
    expect(inBaseUnit('100', { unit: null, vartype: 'integer' })).toBe('100');
    expect(inBaseUnit('true', { unit: null, vartype: 'bool' })).toBe('on');
    expect(inBaseUnit('scram-sha-256', { unit: null, vartype: 'enum' })).toBe('scram-sha-256');
  });
});
