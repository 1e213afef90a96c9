// What the SQL engines share for Trove's database, user, access and root operations: errors named
// after Trove's exceptions (the control plane maps the name to the HTTP status), checks of names
// and passwords before anything reaches the engine, and the order Trove lists things in.

export type TroveErrorName =
  | 'DatabaseAlreadyExists'
  | 'DatabaseNotFound'
  | 'UserAlreadyExists'
  | 'UserNotFound'
  | 'BadRequest'
  | 'NotImplemented';

export function troveError(name: TroveErrorName, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

/** Trove's wording for an operation a datastore does not have (its API answers 501). */
export function notImplemented(engine: string, what: string): Error {
  return troveError('NotImplemented', `Operation not supported for datastore ${engine} (${what}).`);
}

export interface NameRules {
  what: 'database' | 'user';
  /** Longest name the engine keeps as given (PostgreSQL would silently truncate a longer one). */
  maxLength: number;
  unit: 'characters' | 'bytes';
  /** Names the engine itself uses: refused here and left out of the lists. */
  reserved: ReadonlySet<string>;
  reservedPrefix?: string;
}

/** The name if the engine can hold it as given and it is not one of its own; BadRequest otherwise. */
export function checkName(value: unknown, rules: NameRules): string {
  const what = rules.what === 'database' ? 'Database' : 'User';
  if (typeof value !== 'string' || value === '') throw troveError('BadRequest', `${what} name is missing.`);
  const length = rules.unit === 'bytes' ? Buffer.byteLength(value) : [...value].length;
  if (length > rules.maxLength) {
    throw troveError('BadRequest', `${what} name is longer than ${rules.maxLength} ${rules.unit}.`);
  }
  // Control characters cannot be written into the engines' own config files (pg_hba.conf).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is what is refused
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw troveError('BadRequest', `${what} name contains a control character.`);
  }
  if (/\s$/.test(value)) throw troveError('BadRequest', `${what} name ends with whitespace.`);
  if (isReserved(value, rules)) throw troveError('BadRequest', `${what} name ${value} is reserved.`);
  return value;
}

export function isReserved(name: string, rules: NameRules): boolean {
  return rules.reserved.has(name) || (!!rules.reservedPrefix && name.startsWith(rules.reservedPrefix));
}

export function checkPassword(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw troveError('BadRequest', 'Password is missing.');
  if (value.includes('\0')) throw troveError('BadRequest', 'Password contains a NUL character.');
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
