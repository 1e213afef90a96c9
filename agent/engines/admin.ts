import {
  type AccountRules,
  hostOrAny,
  type NameRule,
  nameProblem,
  type Problem,
  passwordProblem,
} from '../../lib/databases/rules/index.ts';
import type { GuestErrorName } from '../../lib/guest/protocol.ts';

export { isReserved } from '../../lib/databases/rules/index.ts';

// What the SQL engines share for Trove's database, user, access and root operations: errors named
// after Trove's exceptions (the control plane maps the name to the HTTP status), checks of names,
// hosts and passwords before anything reaches the engine (the very rules the API applies,
// lib/databases/rules), and the order Trove lists things in.

/** One list with the API's (lib/guest/protocol.ts), which maps each name to Trove's status. */
export type TroveErrorName = GuestErrorName;

export function troveError(name: TroveErrorName, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

/** Trove's wording for an operation a datastore does not have (its API answers 501). */
export function notImplemented(engine: string, what: string): Error {
  return troveError('NotImplemented', `Operation not supported for datastore ${engine} (${what}).`);
}

/** A name the engine can hold as given and that is not one of its own; BadRequest otherwise. */
export function checkName(value: unknown, rule: NameRule): string {
  const what = rule.what === 'database' ? 'Database' : 'User';
  if (typeof value !== 'string') throw troveError('BadRequest', `${what} name is missing.`);
  return refuseIf(nameProblem(value, rule), value);
}

/** The host as the engine keeps it ('%' when none is given); BadRequest for one it cannot match. */
export function checkHost(value: unknown, rules: AccountRules): string {
  const host = hostOrAny(value as string | undefined);
  if (typeof host !== 'string') throw troveError('BadRequest', 'Host must be a string.');
  return rules.hostForm(refuseIf(rules.hostProblem(host), host));
}

export function checkPassword(value: unknown): string {
  if (typeof value !== 'string') throw troveError('BadRequest', 'Password is missing.');
  return refuseIf(passwordProblem(value), value);
}

function refuseIf(problem: Problem, value: string): string {
  if (problem) throw troveError('BadRequest', problem);
  return value;
}

/** An optional text field (character_set, collate): undefined when empty. */
export function optionalText(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw troveError('BadRequest', `${what} must be a string.`);
  return value;
}

export function checkList<T>(value: T[], what: string): T[] {
  if (!Array.isArray(value)) throw troveError('BadRequest', `${what} must be a list.`);
  return value;
}

/** Refuses the same name twice in one request: the engine would fail half-way through. */
export function checkDistinct(keys: string[], what: string): void {
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) throw troveError('BadRequest', `${what} ${key} is given more than once.`);
    seen.add(key);
  }
}

/** Trove's guest sorts lists by their marker key (name; name then host for users). */
export function compareNames(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function compareUsers(a: { name: string; host: string }, b: { name: string; host: string }): number {
  return compareNames(a, b) || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0);
}

/** `name@host`, as Trove addresses users in messages. */
export function userLabel(name: string, host: string): string {
  return `${name}@${host}`;
}

/** An engine's error message with any of `secrets` blanked out (a failing statement may echo them). */
export function redact(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}
