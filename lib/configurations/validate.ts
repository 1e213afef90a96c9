import { UnprocessableEntity } from '../errors.ts';
import type { ParameterRule } from './parameters/index.ts';

export type ParameterValue = string | number | boolean;

/**
 * Trove's validation of a group's values against the datastore version's rules (TROVE_API.md
 * §6): every failure is a 422 naming the parameter, checked for all values before anything is
 * written. Types are strict JSON types: "100" is not an integer. Two differences, both deliberate:
 * a boolean is not accepted as an integer (a Python quirk in Trove), and a float rule accepts a
 * whole number (JSON has no separate float, so 1.0 arrives as 1).
 */
export function validateValues(
  values: Record<string, unknown>,
  rules: ParameterRule[],
  datastore: string,
): Record<string, ParameterValue> {
  if (rules.length === 0)
    throw new UnprocessableEntity('Configuration groups are not supported for this datastore.');
  const byName = new Map(rules.map((r) => [r.name.toLowerCase(), r]));
  const out: Record<string, ParameterValue> = {};
  for (const [key, value] of Object.entries(values)) {
    const rule = byName.get(key.toLowerCase());
    if (!rule) {
      throw new UnprocessableEntity(
        `The configuration parameter ${key} is not supported for this datastore: ${datastore}.`,
      );
    }
    if (!hasType(value, rule.type)) {
      throw new UnprocessableEntity(
        `The value provided for the configuration parameter ${rule.name} is not of type ${rule.type}.`,
      );
    }
    if (typeof value === 'number') {
      if (rule.min !== undefined && value < rule.min) {
        throw new UnprocessableEntity(
          `The value for the configuration parameter ${rule.name} is less than the minimum allowed: ${rule.min}.`,
        );
      }
      if (rule.max !== undefined && value > rule.max) {
        throw new UnprocessableEntity(
          `The value for the configuration parameter ${rule.name} is greater than the maximum allowed: ${rule.max}.`,
        );
      }
    }
    out[rule.name] = value as ParameterValue;
  }
  return out;
}

function hasType(value: unknown, type: ParameterRule['type']): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
  }
}

/** Whether applying these values needs a restart of the engine. */
export function needsRestart(values: Record<string, unknown>, rules: ParameterRule[]): boolean {
  const restart = new Set(rules.filter((r) => r.restart_required).map((r) => r.name.toLowerCase()));
  return Object.keys(values).some((k) => restart.has(k.toLowerCase()));
}
