import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MARIADB_BUILDS, mariadbPrograms } from '../lib/catalog/mariadb-versions.ts';
import { installPostgresqlVersions, missingPostgresqlVersions } from './postgresql-versions.ts';

export class MissingPrerequisite extends Error {}

interface Requirement {
  what: string;
  present: () => boolean;
  debianPackages: string[];
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const JAVA: Requirement = {
  what: 'Java (for DynamoDB Local)',
  present: () => onPath('java'),
  debianPackages: ['default-jre-headless'],
};

const ENGINES: Requirement = {
  what: 'The database engines (MariaDB 10.11, PostgreSQL 15, Redis 7) the local compute host runs',
  present: () =>
    [
      '/usr/sbin/mariadbd',
      '/usr/bin/mariadb-install-db',
      '/usr/bin/redis-server',
      '/usr/lib/postgresql/15/bin/postgres',
    ].every((path) => existsSync(path)),
  debianPackages: ['mariadb-server', 'mariadb-client', 'mariadb-backup', 'redis-server', 'postgresql-15'],
};

/** Root on a Debian-like machine may install what is missing itself; elsewhere we say what to install. */
function canInstall(): boolean {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && onPath('apt-get');
}

export function installDebianPackages(packages: string[], log: (line: string) => void = console.log): void {
  log(`installing Debian packages: ${packages.join(' ')}`);
  // There is no init system to run the packages' own services, and we start engines ourselves.
  if (!existsSync('/usr/sbin/policy-rc.d'))
    writeFileSync('/usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
      stdio: 'inherit',
      env,
    });
  try {
    install();
  } catch {
    // A fresh machine has no package lists yet.
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    install();
  }
}

export async function checkPrerequisites(needs: { java: boolean }): Promise<void> {
  // The compute host's firewall rules (allowed_cidrs) need nft; without it the host runs without
  // isolation and says so, so a failed install is not fatal here.
  if (!onPath('nft') && canInstall()) {
    try {
      installDebianPackages(['nftables']);
    } catch {
      // reported by the compute host as isolation it cannot give
    }
  }
  // Volumes grow online (resize volume); a host that may not grow a mounted ext4 uses XFS
  // (local/compute/volumes.ts says why), whose tools Debian ships apart.
  if (!onPath('xfs_growfs') && canInstall()) {
    try {
      installDebianPackages(['xfsprogs']);
    } catch {
      // the compute host then makes ext4 volumes, and says that they cannot grow online
    }
  }
  const required = [needs.java ? JAVA : undefined, ENGINES].filter((r): r is Requirement => r !== undefined);
  for (const req of required) {
    if (req.present()) continue;
    if (canInstall()) {
      installDebianPackages(req.debianPackages);
      if (req.present()) continue;
    }
    throw new MissingPrerequisite(
      `${req.what} is missing: install it (Debian/Ubuntu: apt-get install ${req.debianPackages.join(' ')})`,
    );
  }
  await ensurePostgresqlVersions();
  ensureMariadbBuilds();
}

/** MariaDB builds missing here (lib/catalog/mariadb-versions.ts): their mariadbd's paths. */
function missingMariadbBuilds(): string[] {
  return MARIADB_BUILDS.map((b) => mariadbPrograms(b).mariadbd).filter((path) => !existsSync(path));
}

/** The older MariaDB build beside the system's, extracted by local/install-packages.sh (root only). */
export function ensureMariadbBuilds(): void {
  if (!missingMariadbBuilds().length) return;
  if (canInstall())
    execFileSync('bash', [join(dirname(fileURLToPath(import.meta.url)), 'install-packages.sh')], {
      stdio: 'inherit',
    });
  const missing = missingMariadbBuilds();
  if (missing.length)
    throw new MissingPrerequisite(
      `MariaDB builds are missing (${missing.join(', ')}): run local/install-packages.sh as root`,
    );
}

/** PostgreSQL 16 and 17 from their npm packages (local/postgresql-versions.ts), root only. */
export async function ensurePostgresqlVersions(): Promise<void> {
  if (!missingPostgresqlVersions().length) return;
  if (process.getuid?.() === 0) await installPostgresqlVersions();
  const missing = missingPostgresqlVersions();
  if (missing.length)
    throw new MissingPrerequisite(
      `PostgreSQL 16/17 are missing (${missing.join(', ')}): run npm ci on linux-x64, then npm start as root once`,
    );
}

/** Makes sure a command is on PATH, installing its Debian packages when this machine allows it. */
export function ensureCommand(command: string, debianPackages: string[]): void {
  if (onPath(command)) return;
  if (canInstall()) installDebianPackages(debianPackages);
  if (!onPath(command)) {
    throw new MissingPrerequisite(
      `${command} is missing: install it (apt-get install ${debianPackages.join(' ')})`,
    );
  }
}
