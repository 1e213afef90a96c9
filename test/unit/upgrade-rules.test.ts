import { describe, expect, it } from 'vitest';
import { mariadbBuild, mariadbBuildOrSystem } from '../../lib/catalog/mariadb-versions.ts';
import { postgresqlVersion, upgradeMethod } from '../../lib/catalog/postgresql-versions.ts';
import { seedVersions } from '../../lib/catalog/seed-data.ts';
import type { DatastoreVersion } from '../../lib/catalog/types.ts';
import { compareVersions, realVersion, upgradeRefusal } from '../../lib/instances/upgrade-rules.ts';

// Which datastore versions an upgrade accepts (Trove's upgrade: a later version of the same
// datastore), and how this cloud moves PostgreSQL's data between its majors.

const version = (datastore: string, name: string): DatastoreVersion => {
  const found = seedVersions.find((v) => v.datastore_name === datastore && v.name === name);
  if (!found) throw new Error(`no seeded ${datastore} ${name}`);
  return found;
};
const on = (v: DatastoreVersion) => ({
  datastore_id: v.datastore_id,
  datastore_name: v.datastore_name,
  version_id: v.id,
  name: v.name,
  version: v.version,
  manager: v.manager,
});

describe('upgrade targets', () => {
  it('orders version numbers numerically, not as text', () => {
    expect(compareVersions('9.6', '10')).toBe(-1);
    expect(compareVersions('10.11', '10.2')).toBe(1);
    expect(compareVersions('17', '17.0')).toBe(0);
    expect(compareVersions('16', '15')).toBe(1);
    expect(compareVersions('10.11.18', '10.11.19')).toBe(-1);
    expect(compareVersions('10.11.19', '10.11.9')).toBe(1);
    // A line alone is its .0: "10.11" is older than any build of it, hence realVersion below.
    expect(compareVersions('10.11', '10.11.18')).toBe(-1);
  });

  it('accepts every later PostgreSQL version: 15 → 16, 15 → 17, 16 → 17', () => {
    expect(upgradeRefusal(on(version('postgresql', '15')), version('postgresql', '16'))).toBeUndefined();
    expect(upgradeRefusal(on(version('postgresql', '15')), version('postgresql', '17'))).toBeUndefined();
    expect(upgradeRefusal(on(version('postgresql', '16')), version('postgresql', '17'))).toBeUndefined();
  });

  it('refuses a downgrade, the same version, an inactive one and another datastore', () => {
    expect(upgradeRefusal(on(version('postgresql', '17')), version('postgresql', '15'))).toMatch(
      /Downgrading from datastore version '17' to '15' is not supported/,
    );
    expect(upgradeRefusal(on(version('postgresql', '16')), version('postgresql', '16'))).toMatch(
      /already runs/,
    );
    expect(
      upgradeRefusal(on(version('postgresql', '15')), { ...version('postgresql', '17'), active: false }),
    ).toMatch(/not active/);
    expect(upgradeRefusal(on(version('postgresql', '15')), version('mysql', '10.11'))).toMatch(
      /belongs to datastore 'mysql', not 'postgresql'/,
    );
  });

  it('compares MariaDB by the build each version runs: 10.11 is 10.11.19, seeded before or after', () => {
    expect(version('mariadb', '10.11').version).toBe('10.11.19');
    expect(realVersion('mariadb', '10.11', '10.11')).toBe('10.11.19');
    expect(realVersion('mysql', '10.11.18', '10.11.18')).toBe('10.11.18');
    expect(realVersion('postgresql', '15', '15')).toBe('15');
    expect(mariadbBuild('10.11')?.version).toBe('10.11.19');
    expect(mariadbBuild('10.11.19')?.name).toBe('10.11');
    expect(mariadbBuild('10.11.18')?.basedir).toBe('/usr/local/lib/troveless/mariadb-10.11.18/usr');
    expect(mariadbBuild('11.4')).toBeUndefined();
    expect(mariadbBuildOrSystem(undefined).basedir).toBe('/usr');
  });

  it('accepts MariaDB 10.11.18 → 10.11 on both datastores, and refuses 10.11 → 10.11.18', () => {
    for (const ds of ['mysql', 'mariadb']) {
      expect(upgradeRefusal(on(version(ds, '10.11.18')), version(ds, '10.11'))).toBeUndefined();
      expect(upgradeRefusal(on(version(ds, '10.11')), version(ds, '10.11.18'))).toMatch(
        /Downgrading from datastore version '10.11.19' to '10.11.18' is not supported/,
      );
    }
    // An instance whose version was seeded as "10.11" with the number "10.11" runs 10.11.19 too.
    const legacy = { ...on(version('mariadb', '10.11')), version: '10.11' };
    expect(upgradeRefusal(legacy, version('mariadb', '10.11.18'))).toMatch(/Downgrading/);
    expect(upgradeRefusal(on(version('mariadb', '10.11.18')), version('mysql', '10.11'))).toMatch(
      /belongs to datastore 'mysql', not 'mariadb'/,
    );
  });

  it('refuses a MariaDB build this cloud does not have, and Redis (one version)', () => {
    const later = { ...version('mariadb', '10.11'), id: 'x', name: '11.4', version: '11.4' };
    expect(upgradeRefusal(on(version('mariadb', '10.11')), later)).toMatch(
      /MariaDB 10.11.19 cannot be upgraded to 11.4 on this cloud/,
    );
    const redis8 = { ...version('redis', '7.0'), id: 'y', name: '8.0', version: '8.0' };
    expect(upgradeRefusal(on(version('redis', '7.0')), redis8)).toMatch(/not supported/);
  });

  it('takes Redis to another catalog version of the same engine build (a restart onto it)', () => {
    const same = { ...version('redis', '7.0'), id: 'z', name: '7.0-rolling' };
    expect(upgradeRefusal(on(version('redis', '7.0')), same)).toBeUndefined();
    expect(upgradeRefusal(on(version('redis', '7.0')), version('redis', '7.0'))).toMatch(/already runs/);
  });

  it('uses pg_upgrade where the target has one and the old bin dir serves it, else a dump', () => {
    const [v15, v16, v17] = ['15', '16', '17'].map((v) => postgresqlVersion(v)!);
    expect(upgradeMethod(v15!, v17!)).toBe('pg_upgrade');
    // No pg_upgrade 16 in any package here, and 16's package has no pg_resetwal for pg_upgrade 17.
    expect(upgradeMethod(v15!, v16!)).toBe('dump');
    expect(upgradeMethod(v16!, v17!)).toBe('dump');
  });
});
