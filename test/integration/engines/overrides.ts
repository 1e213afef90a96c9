import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout, OverrideValue } from '../../../agent/engines/manager.ts';
import {
  type ParameterManager,
  type ParameterRule,
  parameterRules,
} from '../../../lib/configurations/parameters/index.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';

// Configuration groups against a real engine (TROVE_API.md §2.3, §6): a dynamic parameter takes
// effect at once, a restart-only one at the next start, both survive restarts, and removing them
// goes back to the defaults.

export interface OverrideSubject {
  name: string;
  manager: ParameterManager;
  make(layout: EngineLayout): ProcessEngine;
  /** A dynamic parameter, a value for it, and how the engine then reports it. */
  dynamic: { name: string; value: OverrideValue; shown: string };
  restartOnly: { name: string; value: OverrideValue; shown: string };
  /** Values the engine refuses although the rules' types allow them (a dynamic one is among them). */
  refused: Record<string, OverrideValue>;
  /** What the instance's config files hold, to compare before and after. */
  configFiles(layout: EngineLayout): Promise<string>;
  /** Engine-specific checks, run after the common ones on the same instance. */
  extra?: (current: () => { manager: ProcessEngine; layout: EngineLayout }) => void;
}

/** A value as the control plane would send it for `rule`, from the engine's report. */
export function typed(rule: ParameterRule, reported: string): OverrideValue {
  switch (rule.type) {
    case 'integer':
    case 'float':
      return Number(reported);
    case 'boolean':
      return /^(on|yes|true|1)$/i.test(reported);
    default:
      return reported;
  }
}

export function describeOverrides(subject: OverrideSubject): void {
  describe(`${subject.name} configuration overrides`, () => {
    const rules = parameterRules(subject.manager);
    const { dynamic, restartOnly } = subject;
    const names = [dynamic.name, restartOnly.name];
    let layout: EngineLayout;
    let manager: ProcessEngine;
    let before: Record<string, string>;
    let files: string;

    beforeAll(async () => {
      layout = await tempLayout(`${subject.name}-cfg`);
      manager = subject.make(layout);
      await manager.prepare({ memoryMb: 256, databases: [], users: [] });
      before = await manager.currentValues(names);
      files = await subject.configFiles(layout);
    });
    afterAll(() => stopAndRemove(manager, layout));

    it('starts from the defaults', async () => {
      expect(Object.keys(before).sort()).toEqual([...names].sort());
      expect(before[dynamic.name]).not.toBe(dynamic.shown);
      expect(before[restartOnly.name]).not.toBe(restartOnly.shown);
      expect(await manager.effectiveDefaults(names)).toMatchObject(before);
    });

    it('applies a dynamic parameter live, without a restart', async () => {
      const pid = await manager.pid();
      expect(await manager.applyOverrides({ [dynamic.name]: dynamic.value }, rules)).toEqual({
        restartRequired: false,
      });
      expect(await manager.currentValues(names)).toEqual({ ...before, [dynamic.name]: dynamic.shown });
      expect(await manager.pid()).toBe(pid);
    });

    it('persists a restart-only parameter, which waits for a restart', async () => {
      const values = { [dynamic.name]: dynamic.value, [restartOnly.name]: restartOnly.value };
      expect(await manager.applyOverrides(values, rules)).toEqual({ restartRequired: true });
      expect(await manager.currentValues(names)).toEqual({ ...before, [dynamic.name]: dynamic.shown });
    });

    it('has both in effect after a restart, and still after another', async () => {
      const overridden = { [dynamic.name]: dynamic.shown, [restartOnly.name]: restartOnly.shown };
      await manager.restart();
      expect(await manager.currentValues(names)).toEqual(overridden);
      // Nothing is waiting any more: the same values again need no restart.
      const values = { [dynamic.name]: dynamic.value, [restartOnly.name]: restartOnly.value };
      expect(await manager.applyOverrides(values, rules)).toEqual({ restartRequired: false });
      await manager.restart();
      expect(await manager.status()).toBe('healthy');
      expect(await manager.currentValues(names)).toEqual(overridden);
      // The defaults are still the ones from before the overrides.
      expect(await manager.effectiveDefaults(names)).toMatchObject(before);
    });

    it('goes back to the defaults on removal: dynamic ones at once, the rest after a restart', async () => {
      expect(await manager.removeOverrides(rules)).toEqual({ restartRequired: true });
      expect(await manager.currentValues(names)).toEqual({
        ...before,
        [restartOnly.name]: restartOnly.shown,
      });
      await manager.restart();
      expect(await manager.currentValues(names)).toEqual(before);
      expect(await manager.removeOverrides(rules)).toEqual({ restartRequired: false });
      expect(await subject.configFiles(layout)).toBe(files);
    });

    it('refuses values the engine cannot take and leaves the instance as it was', async () => {
      await manager.applyOverrides({ [dynamic.name]: dynamic.value }, rules);
      const current = await manager.currentValues(names);
      const config = await subject.configFiles(layout);
      await expect(manager.applyOverrides(subject.refused, rules)).rejects.toMatchObject({
        name: 'BadRequest',
      });
      expect(await manager.currentValues(names)).toEqual(current);
      expect(await subject.configFiles(layout)).toBe(config);
      expect(await manager.removeOverrides(rules)).toEqual({ restartRequired: false });
      expect(await manager.currentValues(names)).toEqual(before);
    });

    it('refuses parameters that are not in the rules', async () => {
      await expect(manager.applyOverrides({ no_such_parameter: 1 }, rules)).rejects.toMatchObject({
        name: 'BadRequest',
        message: expect.stringMatching(/no_such_parameter is not supported/),
      });
    });

    subject.extra?.(() => ({ manager, layout }));
  });
}

/**
 * Every rule at the value the engine reports: all of them are taken (so every name and value
 * format is one the engine and its config file accept), and the engine starts with them.
 */
export function describeWholeCatalog(subject: Pick<OverrideSubject, 'name' | 'manager' | 'make'>): void {
  describe(`${subject.name} takes every catalog parameter`, () => {
    const rules = parameterRules(subject.manager);
    let layout: EngineLayout;
    let manager: ProcessEngine;

    beforeAll(async () => {
      layout = await tempLayout(`${subject.name}-all`);
      manager = subject.make(layout);
      await manager.prepare({ memoryMb: 256, databases: [], users: [] });
    });
    afterAll(() => stopAndRemove(manager, layout));

    it('applies all of them at their current values and starts with them', async () => {
      const current = await manager.currentValues(rules.map((r) => r.name));
      expect(Object.keys(current).sort()).toEqual(rules.map((r) => r.name).sort());
      const values = Object.fromEntries(rules.map((r) => [r.name, typed(r, current[r.name] as string)]));
      await manager.applyOverrides(values, rules);
      await manager.restart();
      expect(await manager.status()).toBe('healthy');
      expect(await manager.applyOverrides(values, rules)).toEqual({ restartRequired: false });
      await manager.removeOverrides(rules);
      await manager.restart();
      expect(await manager.status()).toBe('healthy');
    });
  });
}
