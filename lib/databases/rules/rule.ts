import { isSafeText, shown } from '../../text.ts';

// Shared by the API (zod refinements in ../schemas.ts) and the guest agent (agent/engines/admin.ts):
// one answer to "may this name, host or password reach the engine?", so a request the API takes is
// never refused by the guest, and the guest never takes what the API would refuse. Whatever passes
// is still quoted by the engine driver's own escaping: these rules keep names usable, they are not
// the injection defence.

/** What is wrong with a value, in words for the user; undefined when nothing is. */
export type Problem = string | undefined;

export interface NameRule {
  what: 'database' | 'user';
  /** Longest name the engine keeps as given (PostgreSQL would silently truncate a longer one). */
  maxLength: number;
  unit: 'characters' | 'bytes';
  /** The whole name must match, when the engine's Trove model has a pattern. */
  pattern?: RegExp;
  /** Characters a name of this kind may not hold anywhere. */
  forbidden?: RegExp;
  /** The engine's own names (Trove's ignore_dbs / ignore_users), in lower case: refused and left out of lists. */
  reserved: readonly string[];
  reservedPrefixes: readonly string[];
}

export interface AccountRules {
  datastore: 'mariadb' | 'postgresql';
  database: NameRule;
  user: NameRule;
  /** Trove's host of a user; '%' (any host) is always allowed. */
  hostProblem(host: string): Problem;
  /** The host as the engine keeps it, once hostProblem found nothing. */
  hostForm(host: string): string;
}

export function nameProblem(value: string, rule: NameRule): Problem {
  const What = rule.what === 'database' ? 'Database' : 'User';
  if (value === '') return `${What} name is missing.`;
  const length = rule.unit === 'bytes' ? Buffer.byteLength(value) : [...value].length;
  if (length > rule.maxLength) return `${What} name is longer than ${rule.maxLength} ${rule.unit}.`;
  // Control characters cannot be written into the engines' own files (pg_hba.conf).
  if (!isSafeText(value)) return `${What} name contains a control or bidirectional-override character.`;
  if (value.trim() !== value) return `${What} name starts or ends with whitespace.`;
  if (rule.forbidden?.test(value) || (rule.pattern && !rule.pattern.test(value))) {
    return `'${shown(value)}' is not a valid ${rule.what} name.`;
  }
  if (isReserved(value, rule)) return `'${shown(value)}' is a reserved ${rule.what} name.`;
  return undefined;
}

/** Reserved in any case: 'Root' and 'MySQL' read as the engine's own to a person. */
export function isReserved(name: string, rule: NameRule): boolean {
  const lower = name.toLowerCase();
  return rule.reserved.includes(lower) || rule.reservedPrefixes.some((p) => lower.startsWith(p));
}

/** Every engine: printable, at most 255 characters (the API's bound on any text). */
export function passwordProblem(value: string): Problem {
  if (value === '') return 'Password is missing.';
  if (value.length > 255 || !isSafeText(value)) return 'The password is not valid.';
  return undefined;
}

/** Trove's default host: any. */
export const ANY_HOST = '%';

export function hostOrAny(host: string | undefined | null): string {
  return host === undefined || host === null || host === '' ? ANY_HOST : host;
}
