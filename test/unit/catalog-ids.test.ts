import { describe, expect, it } from 'vitest';
import { datastoreId, datastoreVersionId, nextFlavorId, uuidV5 } from '../../lib/catalog/ids.ts';
import { seedDatastores, seedFlavors, seedVersions } from '../../lib/catalog/seed-data.ts';

describe('catalog ids', () => {
  it('are RFC 9562 version 5 UUIDs', () => {
    // The RFC's own example: the DNS namespace and "www.example.com".
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('depend only on the names, so seeding again gives the same ids', () => {
    expect(datastoreId('mysql')).toBe(datastoreId('mysql'));
    expect(datastoreId('mysql')).not.toBe(datastoreId('mariadb'));
    expect(datastoreVersionId('mysql', '10.11', '10.11')).not.toBe(
      datastoreVersionId('mariadb', '10.11', '10.11'),
    );
    expect(datastoreVersionId('mysql', '10.11', '10.11')).not.toBe(
      datastoreVersionId('mysql', '10.11', '10.11.6'),
    );
  });

  it('number a new flavor after the largest numeric id', () => {
    expect(nextFlavorId([])).toBe('1');
    expect(nextFlavorId(['1', '8', '3', 'custom'])).toBe('9');
    expect(nextFlavorId(['10', '9'])).toBe('11');
  });
});

describe('the seeded catalog', () => {
  it('serves mysql, mariadb, postgresql (15, 16, 17) and redis, each with an active default version', () => {
    expect(seedDatastores.map((d) => d.name)).toEqual(['mysql', 'mariadb', 'postgresql', 'redis']);
    for (const ds of seedDatastores) {
      const version = seedVersions.find((v) => v.id === ds.default_version_id);
      expect(version).toMatchObject({ datastore_id: ds.id, datastore_name: ds.name, active: true });
    }
    // 15 stays postgresql's default: a create that names no version gets what it got before.
    const pgDefault = seedDatastores.find((d) => d.name === 'postgresql')?.default_version_id;
    expect(seedVersions.find((v) => v.id === pgDefault)?.name).toBe('15');
    expect(seedVersions.map((v) => [v.datastore_name, v.name, v.version, v.manager])).toEqual([
      ['mysql', '10.11', '10.11.19', 'mysql'],
      ['mysql', '10.11.18', '10.11.18', 'mysql'],
      ['mariadb', '10.11', '10.11.19', 'mariadb'],
      ['mariadb', '10.11.18', '10.11.18', 'mariadb'],
      ['postgresql', '15', '15', 'postgresql'],
      ['postgresql', '16', '16', 'postgresql'],
      ['postgresql', '17', '17', 'postgresql'],
      ['redis', '7.0', '7.0', 'redis'],
    ]);
    // "10.11" now shows the build it runs (10.11.19) but keeps the id instances already refer to.
    expect(seedVersions.find((v) => v.datastore_name === 'mysql' && v.name === '10.11')?.id).toBe(
      datastoreVersionId('mysql', '10.11', '10.11'),
    );
  });

  it('has the flavors Trove users expect, with string ids', () => {
    expect(seedFlavors.map((f) => [f.id, f.name, f.ram, f.vcpus, f.disk, f.ephemeral])).toEqual([
      ['1', 'm1.tiny', 512, 1, 1, 0],
      ['2', 'm1.small', 2048, 1, 20, 0],
      ['3', 'm1.medium', 4096, 2, 40, 0],
      ['4', 'm1.large', 8192, 4, 80, 0],
      ['6', 'ds2G', 2048, 2, 10, 0],
      ['7', 'ds512M', 512, 1, 5, 0],
      ['8', 'ds1G', 1024, 1, 10, 0],
    ]);
  });
});
