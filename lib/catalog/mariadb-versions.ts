// The MariaDB builds this cloud serves (for Trove's `mysql` and `mariadb` datastores alike), and
// where each one's programs are: the one place the catalog (seed-data.ts), the upgrade rules
// (lib/instances/upgrade-rules.ts) and the guest agent (which build runs a data dir, backs it up
// and restores it) read them from.
//
// Debian's archive here has two builds of the 10.11 line: 10.11.19 (bookworm-security, the
// system's own /usr/sbin/mariadbd) and 10.11.18 (bookworm main). local/install-packages.sh
// extracts the older one's packages (`apt-get download` + `dpkg-deb -x`, nothing installed
// system-wide) under INSTALL_ROOT, where it runs beside the system build with its own --basedir,
// messages, charsets and plugins. Keep its list of packages and this file in step.

export const MARIADB_INSTALL_ROOT = '/usr/local/lib/troveless';

export interface MariadbBuild {
  /** The datastore version's name in the catalog. */
  name: string;
  /** The server's real version, what `SELECT VERSION()` starts with: what upgrades compare. */
  version: string;
  /** The installation prefix (--basedir): bin/, sbin/mariadbd, share/mysql, lib/mysql/plugin. */
  basedir: string;
  /** Where the programs come from (Debian packages), for the catalog's `packages`. */
  packages: string[];
}

export const MARIADB_BUILDS: readonly MariadbBuild[] = [
  // The line's newest build first: a version that names only the line ("10.11") runs it.
  {
    name: '10.11',
    version: '10.11.19',
    basedir: '/usr',
    packages: ['mariadb-server', 'mariadb-backup'],
  },
  {
    name: '10.11.18',
    version: '10.11.18',
    basedir: `${MARIADB_INSTALL_ROOT}/mariadb-10.11.18/usr`,
    packages: [
      'mariadb-server-core=1:10.11.18-0+deb12u1',
      'mariadb-client-core=1:10.11.18-0+deb12u1',
      'mariadb-backup=1:10.11.18-0+deb12u1',
      // Its plugins only (lib/mysql/plugin): a plugin must come from the server's own build.
      'mariadb-server=1:10.11.18-0+deb12u1',
    ],
  },
];

/**
 * The build a datastore version runs, by its name ("10.11.18"), else its exact version number
 * ("10.11.19"), else the newest build of the line it names ("10.11", as versions seeded before
 * there were two builds still say); undefined when none fits.
 */
export function mariadbBuild(ref: string | undefined): MariadbBuild | undefined {
  if (!ref) return undefined;
  return (
    MARIADB_BUILDS.find((b) => b.name === ref) ??
    MARIADB_BUILDS.find((b) => b.version === ref) ??
    MARIADB_BUILDS.find((b) => b.version.startsWith(`${ref}.`))
  );
}

/**
 * The build an instance runs: by its datastore version, else the system's (every MariaDB instance
 * ran the system build before there were two, whatever its version was named).
 */
export function mariadbBuildOrSystem(ref: string | undefined): MariadbBuild {
  return mariadbBuild(ref) ?? (MARIADB_BUILDS[0] as MariadbBuild);
}

/** The programs and directories of a build. */
export function mariadbPrograms(build: MariadbBuild) {
  const { basedir } = build;
  return {
    mariadbd: `${basedir}/sbin/mariadbd`,
    installDb: `${basedir}/bin/mariadb-install-db`,
    upgrade: `${basedir}/bin/mariadb-upgrade`,
    backup: `${basedir}/bin/mariadb-backup`,
    mbstream: `${basedir}/bin/mbstream`,
    /** errmsg.sys per language, and charsets/ (--lc-messages-dir, --character-sets-dir). */
    shareDir: `${basedir}/share/mysql`,
    pluginDir: `${basedir}/lib/mysql/plugin`,
  };
}
