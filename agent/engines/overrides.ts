import { readFile, rename } from 'node:fs/promises';
import { troveError } from './admin.ts';
import { writeConfig } from './fs.ts';
import type { OverrideRule, OverrideValue } from './manager.ts';

// What the engines share for configuration-group overrides: checking names and values against
// the rules before anything reaches the engine, and the agent's own record of the overrides
// (a root-only JSON file in the instance's base dir) with what each engine needs to undo them
// and to tell whether a restart is still due.

export interface OverrideState {
  /** The overrides in force, by the rule's own name. */
  values: Record<string, OverrideValue>;
  /** Restart-only names whose value in the config file may differ from what the engine runs with:
   *  the overridden ones, and the ones removed since the engine last started. */
  restartOnly: string[];
  /** Each overridden setting's value (as the engine reported it) before the first override
   *  touched it: what removing the override goes back to when the flavor config has no value. */
  baseline: Record<string, string>;
  /** The restart-only overrides (as written to the config file) the engine last started with. */
  started: Record<string, string>;
}

export interface OverridePlan {
  /** The new overrides, keyed by the rule's name. */
  wanted: Record<string, OverrideValue>;
  /** Names in `wanted` that the engine takes live. */
  dynamic: string[];
  /** Names overridden before but not in `wanted`, split the same way. */
  droppedDynamic: string[];
  droppedRestartOnly: string[];
  restartOnly: (name: string) => boolean;
}

/** A name safe to write into any engine's config file and statements (after escaping). */
const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

export function badRequest(message: string): Error {
  return troveError('BadRequest', message);
}

/**
 * Matches each value to its rule (without regard to case, as Trove does) and checks that the
 * value is one an engine config file can hold; BadRequest otherwise, before anything changes.
 */
export function planOverrides(
  values: Record<string, OverrideValue>,
  rules: OverrideRule[],
  state: OverrideState,
): OverridePlan {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw badRequest('Configuration values must be an object.');
  }
  const byName = new Map(rules.map((rule) => [rule.name.toLowerCase(), rule]));
  const wanted: Record<string, OverrideValue> = {};
  for (const [key, value] of Object.entries(values)) {
    const rule = byName.get(key.toLowerCase());
    if (!rule) throw badRequest(`The configuration parameter ${key} is not supported for this datastore.`);
    if (!SAFE_NAME.test(rule.name))
      throw badRequest(`The configuration parameter ${key} has an invalid name.`);
    if (rule.name in wanted) throw badRequest(`The configuration parameter ${key} is given twice.`);
    wanted[rule.name] = checkValue(key, value);
  }
  const restartOnly = (name: string) =>
    byName.get(name.toLowerCase())?.restart_required ?? state.restartOnly.includes(name);
  const dropped = Object.keys(state.values).filter((name) => !(name in wanted));
  return {
    wanted,
    dynamic: Object.keys(wanted).filter((name) => !restartOnly(name)),
    droppedDynamic: dropped.filter((name) => !restartOnly(name)),
    droppedRestartOnly: dropped.filter(restartOnly),
    restartOnly,
  };
}

function checkValue(key: string, value: unknown): OverrideValue {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && !CONTROL.test(value)) return value;
  throw badRequest(`The value of configuration parameter ${key} is not one this datastore can take.`);
}

/**
 * The state after applying `plan`: `live` holds the engine's values before the change, which
 * become the baseline of names overridden for the first time. Dynamic names that were dropped
 * have been reset live, so their baseline goes; restart-only ones keep theirs until the next start.
 */
export function nextState(
  state: OverrideState,
  plan: OverridePlan,
  live: Record<string, string>,
): OverrideState {
  const baseline = { ...state.baseline };
  for (const name of Object.keys(plan.wanted)) {
    const before = live[name];
    if (!(name in baseline) && !(name in state.values) && before !== undefined) baseline[name] = before;
  }
  for (const name of plan.droppedDynamic) delete baseline[name];
  const restartOnly = new Set(state.restartOnly);
  for (const name of Object.keys(plan.wanted)) if (plan.restartOnly(name)) restartOnly.add(name);
  return { values: plan.wanted, restartOnly: [...restartOnly], baseline, started: state.started };
}

/**
 * Whether the config file holds a restart-only value other than the one the engine started with
 * (an override added, changed or removed since the last start).
 */
export function restartPending(state: OverrideState, render: (value: OverrideValue) => string): boolean {
  const names = new Set([...state.restartOnly, ...Object.keys(state.started)]);
  return [...names].some((name) => {
    const value = state.values[name];
    return (value === undefined ? undefined : render(value)) !== state.started[name];
  });
}

/** The agent's record of an instance's overrides, in a root-only file. */
export class OverrideStore {
  constructor(private readonly path: string) {}

  async load(): Promise<OverrideState> {
    const empty: OverrideState = { values: {}, restartOnly: [], baseline: {}, started: {} };
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return empty;
    }
    const saved = JSON.parse(text) as Partial<OverrideState>;
    return { ...empty, ...saved };
  }

  /** Written whole and renamed into place: a crash leaves the old record or the new one. */
  async save(state: OverrideState): Promise<void> {
    const tmp = `${this.path}.tmp`;
    await writeConfig(tmp, `${JSON.stringify(state, null, 2)}\n`, { uid: 0, gid: 0 }, 0o600);
    await rename(tmp, this.path);
  }

  /**
   * Called just before the engine process starts: the restart-only values in the config file are
   * now the ones it runs with, and baselines of names no longer overridden are done with.
   */
  async markStarted(render: (value: OverrideValue) => string): Promise<void> {
    const state = await this.load();
    const overridden = (name: string) => name in state.values;
    const started: Record<string, string> = {};
    for (const name of state.restartOnly.filter(overridden)) {
      started[name] = render(state.values[name] as OverrideValue);
    }
    const baseline = Object.fromEntries(Object.entries(state.baseline).filter(([name]) => overridden(name)));
    const next = {
      values: state.values,
      restartOnly: state.restartOnly.filter(overridden),
      baseline,
      started,
    };
    if (JSON.stringify(next) !== JSON.stringify(state)) await this.save(next);
  }
}
