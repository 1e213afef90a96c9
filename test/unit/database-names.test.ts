import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkDatabaseName, checkHost, checkUserName, parseUserRef } from '../../lib/databases/accounts.ts';
import { isReserved, mariadb } from '../../lib/databases/rules/index.ts';
import { BadRequest } from '../../lib/errors.ts';
import { isSafeText } from '../../lib/text.ts';

const hasControlCharacter = (value: string) => !isSafeText(value);
const isReservedDatabase = (_manager: 'mysql', name: string) => isReserved(name, mariadb.database);

const managers = ['mysql', 'mariadb', 'postgresql'] as const;

function outcome(check: () => string): 'ok' | 'refused' {
  try {
    check();
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequest);
    return 'refused';
  }
}

describe('database and user name rules', () => {
  it('never let through control characters, backslashes, edge spaces or over-long names', () => {
    fc.assert(
      fc.property(fc.constantFrom(...managers), fc.string({ maxLength: 80 }), (manager, name) => {
        for (const check of [checkDatabaseName, checkUserName]) {
          if (outcome(() => check(manager, name)) === 'ok') {
            expect(hasControlCharacter(name)).toBe(false);
            expect(name).not.toContain('\\');
            expect(name.trim()).toBe(name);
            expect(name.length).toBeLessThanOrEqual(64);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuse reserved names in any case', () => {
    for (const name of ['mysql', 'information_schema', 'MySQL', 'performance_schema', 'sys']) {
      expect(() => checkDatabaseName('mysql', name)).toThrow(BadRequest);
    }
    for (const name of ['postgres', 'template0', 'template1'])
      expect(() => checkDatabaseName('postgresql', name)).toThrow(BadRequest);
    for (const name of ['root', 'os_admin']) expect(() => checkUserName('mysql', name)).toThrow(BadRequest);
    expect(() => checkUserName('postgresql', 'postgres')).toThrow(BadRequest);
    expect(isReservedDatabase('mysql', 'appdb')).toBe(false);
  });

  it("follow Trove's MySQL database names: hostile ones are refused", () => {
    for (const name of ['a`b', 'a"b', "o'neil", 'x; DROP DATABASE y', 'a/b', '']) {
      expect(() => checkDatabaseName('mysql', name)).toThrow(BadRequest);
    }
    for (const name of ['appdb', 'my-db_1', 'a b']) expect(checkDatabaseName('mysql', name)).toBe(name);
  });

  it('read name@host from the URL, splitting at the last @', () => {
    expect(parseUserRef('mysql', 'alice')).toEqual({ name: 'alice', host: '%' });
    expect(parseUserRef('mysql', 'alice@10.0.%')).toEqual({ name: 'alice', host: '10.0.%' });
    // Decoded once by the edge: a literal '%41' stays as it is.
    expect(() => parseUserRef('mysql', 'alice%41')).not.toThrow();
    expect(parseUserRef('mysql', 'alice%41').name).toBe('alice%41');
    expect(parseUserRef('mysql', 'alice@%')).toEqual({ name: 'alice', host: '%' });
  });

  it('accept host patterns and CIDRs, refuse anything else', () => {
    for (const host of ['%', '10.0.%', '192.168.1.0/24', 'db.example.org', '::1'])
      expect(checkHost('mysql', host)).toBe(host);
    for (const host of ["x'y", 'a b', 'h;drop']) expect(() => checkHost('mysql', host)).toThrow(BadRequest);
  });
});
