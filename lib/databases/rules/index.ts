import { mariadb } from './mariadb.ts';
import { postgresql } from './postgresql.ts';
import type { AccountRules } from './rule.ts';

export * from './rule.ts';
export { mariadb, postgresql };

/** The rules of a datastore manager ('mysql' and 'mariadb' share MariaDB's). */
export function accountRulesFor(manager: string): AccountRules {
  return manager === 'postgresql' ? postgresql : mariadb;
}
