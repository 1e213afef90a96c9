import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkHost, checkName, checkPassword } from '../../agent/engines/admin.ts';
import { accountRulesFor } from '../../lib/databases/rules/index.ts';
import { CreateUsersRequest, requestsFor } from '../../lib/databases/schemas.ts';

// The API (zod at the edge, then the engine's refinements) and the guest agent (the checks its
// MariaDB and PostgreSQL managers run before touching the engine) must agree on every name, host
// and password: one accepting what the other refuses is a 202 that fails on the guest, or a 400
// for something the engine would hold.

const tricky = [...'aZ09_-@#?.% `\'";\\/:+,\t\n\u00a0\u202e\u0000é漢🙂'];
const piece = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: fc.constantFrom(...tricky), maxLength: 70 }),
  fc.constantFrom(
    'root',
    'Root',
    'os_admin',
    'mysql',
    'MySQL',
    'debian-sys-maint',
    'mariadb.sys',
    'PUBLIC',
    'postgres',
    'template1',
    'pg_monitor',
    'PG_data',
    'pg_',
    'information_schema',
    '#mysql50#x',
    'lost+found',
    'appdb',
    'a b',
    ' a',
    'a ',
    'x'.repeat(32),
    'x'.repeat(33),
    'é'.repeat(32),
    'é'.repeat(40),
    'x'.repeat(63),
    'x'.repeat(64),
    'x'.repeat(65),
  ),
);
const host = fc.oneof(
  fc.constantFrom(undefined, '', '%', '10.0.%', '10.0.0.0/8', '10.0.0.0/255.0.0.0', '::1', '127.0.0.1'),
  fc.constantFrom('db.example.org', '10.0.0.0/33', 'a b', "x'y", 'fe80::1/64', '1.2.3.4/255.0.255.0'),
  fc.string({ unit: fc.constantFrom(...'0123456789./%:abcdef '), maxLength: 24 }),
);

function apiAccepts(manager: string, user: Record<string, unknown>): boolean {
  const body = { users: [user] };
  return (
    CreateUsersRequest.safeParse(body).success &&
    requestsFor(manager).CreateUsersRequest.safeParse(body).success
  );
}

function agentAccepts(manager: string, user: { name: string; password: string; host?: string; db: string }) {
  const rules = accountRulesFor(manager);
  try {
    checkName(user.name, rules.user);
    checkName(user.db, rules.database);
    checkHost(user.host, rules);
    checkPassword(user.password);
    return true;
  } catch (err) {
    expect((err as Error).name).toBe('BadRequest');
    return false;
  }
}

describe('name, host and password rules: the API and the guest agent agree', () => {
  for (const manager of ['mysql', 'mariadb', 'postgresql']) {
    it(`${manager}: the API accepts exactly what the agent accepts (property)`, () => {
      fc.assert(
        fc.property(piece, piece, piece, host, (name, db, password, given) => {
          const user = { name, password, ...(given === undefined ? {} : { host: given }) };
          const api = apiAccepts(manager, { ...user, databases: [{ name: db }] });
          expect(api).toBe(agentAccepts(manager, { ...user, db }));
        }),
        { numRuns: 3000, seed: 11 },
      );
    });
  }

  it('refuse the drifted names on both sides: debian-sys-maint, pg_ users and databases, PostgreSQL host names', () => {
    const cases: [string, { name: string; db: string; host?: string }][] = [
      ['mysql', { name: 'debian-sys-maint', db: 'appdb' }],
      ['postgresql', { name: 'pg_app', db: 'appdb' }],
      ['postgresql', { name: 'app', db: 'pg_app' }],
      ['postgresql', { name: 'app', db: 'appdb', host: 'db.example.org' }],
    ];
    for (const [manager, { name, db, host: given }] of cases) {
      const user = { name, password: 'secret', ...(given ? { host: given } : {}) };
      expect(apiAccepts(manager, { ...user, databases: [{ name: db }] })).toBe(false);
      expect(agentAccepts(manager, { ...user, db })).toBe(false);
    }
    expect(apiAccepts('mysql', { name: 'app', password: 'pw', host: 'db.example.org' })).toBe(true);
  });
});
