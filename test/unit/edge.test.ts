import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CreateBackupRequest } from '../../lib/backups/schemas.ts';
import { CreateConfigurationRequest } from '../../lib/configurations/schemas.ts';
import { checkDatabaseName, checkUserName } from '../../lib/databases/accounts.ts';
import { CreateUsersRequest } from '../../lib/databases/schemas.ts';
import { BadRequest, NotFound } from '../../lib/errors.ts';
import { publicGuestMessage } from '../../lib/guest/calls.ts';
import {
  checkPathParameters,
  checkQueryParameters,
  pathMatchesRoute,
  unroutablePath,
} from '../../lib/http/edge.ts';
import { CreateInstanceRequest } from '../../lib/instances/schemas.ts';
import { isSafeText } from '../../lib/text.ts';
import { canonicalTarget } from '../../local/front.ts';

const T = '/v1.0/{project_id}/instances/{instance_id}/databases/{database}';

describe('the edge refuses paths that cannot be routed truthfully', () => {
  it('refuses dot segments, raw or percent-encoded, and invalid percent-encoding', () => {
    for (const path of [
      '/v1.0/p/instances/i/databases/..',
      '/v1.0/p/instances/i/databases/.',
      '/v1.0/p/instances/i/databases/%2e%2e',
      '/v1.0/p/instances/i/databases/%2E.',
      '/v1.0/p/instances/i/databases/.%2E',
      '/v1.0/p/./instances',
      '/v1.0/p/instances/%FF%FE',
      '/v1.0/p/instances/%C0%AE',
      '/v1.0/p/instances/100%',
      '/v1.0/p/instances/%zz',
      '/v1.0/p/instances/a\\..',
      '/v1.0/p/instances/a%5C..',
    ]) {
      expect(unroutablePath(path), path).toEqual(expect.any(String));
      expect('refuse' in canonicalTarget(path), path).toBe(true);
    }
    for (const path of ['/', '/v1.0/p/instances/i', '/v1.0/p/instances/a..b', '/v1.0/p/instances/%2e']) {
      expect(unroutablePath(path) === undefined, path).toBe(!path.endsWith('%2e'));
    }
  });

  it('serves a path only for the route it matches, with parameters decoded or not', () => {
    const params = { project_id: 'p', instance_id: 'i', database: 'a b' };
    expect(pathMatchesRoute('/v1.0/p/instances/i/databases/a%20b', T, params)).toBe(true);
    expect(pathMatchesRoute('/v1.0/p/instances/i/databases/a%20b/', T, params)).toBe(true);
    expect(pathMatchesRoute('/v1.0/p/instances/i/databases/a%20b', T, { ...params, database: 'a%20b' })).toBe(
      true,
    );
    // What a front end that resolved `..` would route: the instance itself.
    expect(
      pathMatchesRoute('/v1.0/p/instances/i', '/v1.0/{project_id}/instances/{instance_id}', {
        project_id: 'p',
        instance_id: 'i',
      }),
    ).toBe(true);
    expect(pathMatchesRoute('/v1.0/p/instances/i/databases/other', T, params)).toBe(false);
    expect(pathMatchesRoute('/v1.0/p/instances/i/users/a%20b', T, params)).toBe(false);
    expect(pathMatchesRoute('/v1.0/p/instances//databases/x', T, { ...params, instance_id: '' })).toBe(false);
  });

  it('re-encodes what it forwards so no parser downstream reads it differently', () => {
    expect(canonicalTarget('/v1.0/p/instances/a%2Fb?x=1#y')).toEqual({
      path: '/v1.0/p/instances/a%2Fb?x=1%23y',
    });
    expect(canonicalTarget('/v1.0/p/users/alice@%25')).toEqual({ path: '/v1.0/p/users/alice%40%25' });
    expect(canonicalTarget('http://evil/v1.0')).toEqual({ refuse: expect.any(String) });
  });
});

describe('ids and names are bounded before they reach a key', () => {
  it('answers 404 for an id no item could have, 400 for an impossible name', () => {
    const cases: Array<[Record<string, string>, typeof NotFound | typeof BadRequest]> = [
      [{ instance_id: 'x'.repeat(1025) }, NotFound],
      [{ instance_id: 'a\u0000b' }, NotFound],
      [{ backup_id: 'a\u202eb' }, NotFound],
      [{ configuration_id: '' }, NotFound],
      [{ project_id: 'p'.repeat(65) }, NotFound],
      [{ version_id: '\ud800' }, NotFound],
      [{ database: 'd'.repeat(65) }, BadRequest],
      [{ user: 'u\u0007' }, BadRequest],
    ];
    for (const [params, kind] of cases) expect(() => checkPathParameters(params)).toThrow(kind);
    expect(() =>
      checkPathParameters({ instance_id: crypto.randomUUID(), user: 'alice@10.0.%', database: 'émoji😀' }),
    ).not.toThrow();
  });

  it('never lets a path id over 1,024 bytes through (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 0, maxLength: 2000 }), (id) => {
        let passed = true;
        try {
          checkPathParameters({ instance_id: id });
        } catch {
          passed = false;
        }
        if (passed) {
          expect(id.length).toBeGreaterThan(0);
          expect(Buffer.byteLength(id)).toBeLessThanOrEqual(1024);
          expect(isSafeText(id)).toBe(true);
        }
      }),
      { seed: 9, numRuns: 500 },
    );
    // 500 strings of up to 2,000 code points: well under a second alone, but CI runs it beside
    // the engines' suites on two cores, where it once passed the default 5 s.
  }, 30_000);

  it('drops empty id filters and refuses huge ones', () => {
    const q: Record<string, string> = { instance_id: '', limit: '5' };
    checkQueryParameters(q);
    expect(q).toEqual({ limit: '5' });
    expect(() => checkQueryParameters({ marker: 'm'.repeat(300) })).toThrow(BadRequest);
    expect(() => checkQueryParameters({ project_id: 'a\u0000' })).toThrow(BadRequest);
  });

  it('bounds body fields: names, references, free text', () => {
    const huge = 'x'.repeat(100_000);
    const base = { name: 'ok', flavorRef: '7', volume: { size: 1 } };
    expect(CreateInstanceRequest.safeParse({ instance: base }).success).toBe(true);
    for (const bad of [
      { ...base, name: 'a\u202eb' },
      { ...base, name: huge },
      { ...base, flavorRef: huge },
      { ...base, configuration: 'a\u0000' },
      { ...base, restorePoint: { backupRef: '' } },
      { ...base, datastore: { type: huge } },
    ]) {
      expect(CreateInstanceRequest.safeParse({ instance: bad }).success).toBe(false);
    }
    expect(CreateBackupRequest.safeParse({ backup: { name: 'b', instance: huge } }).success).toBe(false);
    expect(CreateBackupRequest.safeParse({ backup: { name: 'b\u0085', instance: 'i' } }).success).toBe(false);
    expect(
      CreateConfigurationRequest.safeParse({ configuration: { name: 'c', values: { [huge]: 1 } } }).success,
    ).toBe(false);
    expect(CreateUsersRequest.safeParse({ users: [{ name: 'u\u2066', password: 'p' }] }).success).toBe(false);
  });

  it('refuses bidi overrides in database and user names on every engine', () => {
    for (const manager of ['mysql', 'mariadb', 'postgresql']) {
      expect(() => checkUserName(manager, 'ad\u202emin')).toThrow(BadRequest);
      expect(() => checkDatabaseName(manager, 'd\u0000b')).toThrow(BadRequest);
    }
  });
});

describe('guest errors', () => {
  it('carry no local paths', () => {
    expect(
      publicGuestMessage("Can't connect to local server through socket '/work/.local/g/run/mysqld.sock' (2)"),
    ).toBe("Can't connect to local server through socket '(local path)' (2)");
    expect(publicGuestMessage('connect ENOENT /tmp/x/redis.sock')).toBe('connect ENOENT (local path)');
    expect(publicGuestMessage("Host '10.0.0.0/24' is not valid")).toBe("Host '10.0.0.0/24' is not valid");
  });
});
