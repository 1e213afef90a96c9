import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findDatastore, flavorIdOf, matchVersion } from '../../lib/catalog/match.ts';
import type { DatastoreVersion } from '../../lib/catalog/types.ts';
import { BadRequest, NotFound } from '../../lib/errors.ts';

const version = (id: string, name: string, number: string, active = true): DatastoreVersion => ({
  id,
  datastore_id: 'ds',
  datastore_name: 'mysql',
  name,
  version: number,
  manager: 'mysql',
  active,
  packages: [],
});

describe('findDatastore', () => {
  const datastores = [
    { id: 'id-a', name: 'mysql' },
    { id: 'mysql', name: 'odd' },
  ];
  it('matches the id before the name, as Datastore.load does', () => {
    expect(findDatastore(datastores, 'mysql')?.name).toBe('odd');
    expect(findDatastore(datastores, 'id-a')?.name).toBe('mysql');
    expect(findDatastore(datastores, 'nosuchdb')).toBeUndefined();
  });
});

describe('matchVersion', () => {
  const versions = [
    version('v1', '10.11', '10.11.6'),
    version('v2', '10.11', '10.11.9'),
    version('v3', '15', '15.4'),
    version('10.11', 'named-like-an-id', '1'),
  ];

  it('tries the id, then the name, then the version number', () => {
    expect(matchVersion(versions, 'v3').id).toBe('v3');
    expect(matchVersion(versions, '10.11').id).toBe('10.11');
    expect(matchVersion(versions, '15').id).toBe('v3');
    expect(matchVersion(versions, '15.4').id).toBe('v3');
  });

  it('narrows a name by the version number when one is given', () => {
    const two = versions.slice(0, 3);
    expect(matchVersion(two, '10.11', '10.11.9').id).toBe('v2');
    // Trove names the number it could not find.
    expect(() => matchVersion(two, '10.11', '10.11.1')).toThrow(
      new BadRequest("Datastore version '10.11.1' cannot be found."),
    );
  });

  it('refuses a name that several versions share', () => {
    expect(() => matchVersion(versions.slice(0, 3), '10.11')).toThrow(BadRequest);
  });

  it('says which version it could not find, as Trove’s 400 (its exception is not in its map)', () => {
    const err = (() => {
      try {
        matchVersion(versions, '9.9');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toEqual(new BadRequest("Datastore version '9.9' cannot be found."));
    expect((err as BadRequest).status).toBe(400);
  });

  it('takes a UUID-like reference as an id only: an unknown one is Trove’s row lookup 404', () => {
    for (const ref of ['6f1c3a52-8a7e-4d55-9f0e-1b2c3d4e5f60', '6F1C3A528A7E4D559F0E1B2C3D4E5F60']) {
      expect(() => matchVersion(versions, ref)).toThrow(new NotFound('DBDatastoreVersion Not Found'));
    }
  });

  it('returns inactive versions too: refusing them is the caller’s rule', () => {
    expect(matchVersion([version('x', '1', '1', false)], '1').active).toBe(false);
  });
});

describe('flavorIdOf', () => {
  it('takes ids, numbers and the last segment of an href', () => {
    expect(flavorIdOf('2')).toBe('2');
    expect(flavorIdOf(7)).toBe('7');
    expect(flavorIdOf('http://127.0.0.1:8779/v1.0/p/flavors/6')).toBe('6');
    expect(flavorIdOf('https://h/flavors/6/?x=1')).toBe('6');
    expect(flavorIdOf('/v1.0/p/flavors/m1')).toBe('m1');
  });

  it('has no id for a missing reference (Trove’s "Resource None")', () => {
    for (const ref of [undefined, null, '', '/']) expect(flavorIdOf(ref)).toBeUndefined();
  });

  it('gives back any plain id unchanged', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$/), (id) => {
        expect(flavorIdOf(id)).toBe(id);
        expect(flavorIdOf(`http://host:8779/v1.0/p/flavors/${id}`)).toBe(id);
      }),
    );
  });
});
