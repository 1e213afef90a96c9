import { datastoreId, datastoreVersionId } from './ids.ts';
import { MARIADB_BUILDS } from './mariadb-versions.ts';
import { POSTGRESQL_VERSIONS } from './postgresql-versions.ts';
import type { Datastore, DatastoreVersion, Flavor, Manager } from './types.ts';

// What Troveless serves out of the box: the engines installed on the machine (LOCAL_STACK.md).
// `mysql` runs on MariaDB too, as Trove's mysql manager runs MariaDB-compatible servers.
interface SeedDatastore {
  name: string;
  /** The version's name. */
  version: string;
  /** Its number, where it says more than the name ("10.11" runs 10.11.19). */
  number?: string;
  manager: Manager;
  packages: string[];
}

// Each MariaDB build (lib/catalog/mariadb-versions.ts) for both datastores, the system's "10.11"
// first: it stays their default.
const mariadb = (manager: 'mysql' | 'mariadb'): SeedDatastore[] =>
  MARIADB_BUILDS.map((b) => ({
    name: manager,
    version: b.name,
    number: b.version,
    manager,
    packages: b.packages,
  }));
const DATASTORES: SeedDatastore[] = [
  ...mariadb('mysql'),
  ...mariadb('mariadb'),
  // 15 first: the datastore's default (the first version seeded for it), as before 16 and 17.
  ...POSTGRESQL_VERSIONS.map((v) => ({
    name: 'postgresql',
    version: v.name,
    manager: 'postgresql' as const,
    packages: v.packages,
  })),
  { name: 'redis', version: '7.0', manager: 'redis', packages: ['redis-server'] },
];

export const seedVersions: DatastoreVersion[] = DATASTORES.map((d) => ({
  // The id of when every seeded number was its name: "10.11" keeps the id instances refer to.
  id: datastoreVersionId(d.name, d.version, d.version),
  datastore_id: datastoreId(d.name),
  datastore_name: d.name,
  name: d.version,
  version: d.number ?? d.version,
  manager: d.manager,
  active: true,
  packages: d.packages,
}));

/** Each datastore's first version is its default. */
export const seedDatastores: Datastore[] = seedVersions
  .filter((v, i) => seedVersions.findIndex((w) => w.datastore_id === v.datastore_id) === i)
  .map((v) => ({
    id: v.datastore_id,
    name: v.datastore_name,
    default_version_id: v.id,
  }));

const flavor = (id: string, name: string, ram: number, vcpus: number, disk: number): Flavor => ({
  id,
  name,
  ram,
  vcpus,
  disk,
  ephemeral: 0,
});

// Nova's classic m1.* sizes and the small ds* ones devstack creates for Trove.
export const seedFlavors: Flavor[] = [
  flavor('1', 'm1.tiny', 512, 1, 1),
  flavor('2', 'm1.small', 2048, 1, 20),
  flavor('3', 'm1.medium', 4096, 2, 40),
  flavor('4', 'm1.large', 8192, 4, 80),
  flavor('6', 'ds2G', 2048, 2, 10),
  flavor('7', 'ds512M', 512, 1, 5),
  flavor('8', 'ds1G', 1024, 1, 10),
];
