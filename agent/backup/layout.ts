import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MariadbBuild, mariadbBuildOrSystem } from '../../lib/catalog/mariadb-versions.ts';
import type { EngineLayout } from '../engines/manager.ts';

// Where an instance keeps what a backup reads and a restore writes. These follow the engine
// managers (agent/engines/base.ts, mariadb.ts, postgresql.ts, redis.ts), which keep them private;
// the backup integration tests run against instances those managers prepared, so a change on
// either side shows up there.

export type BackupEngine = 'mariadb' | 'postgresql' | 'redis';

export const BACKUP_ENGINES: readonly BackupEngine[] = ['mariadb', 'postgresql', 'redis'];

export interface InstancePaths {
  baseDir: string;
  dataDir: string;
  runDir: string;
  /** base.ts: present once the data dir holds an initialised engine; prepare() then never re-initialises. */
  initializedMarker: string;
  /** base.ts: present while the engine is down on purpose. */
  stoppedMarker: string;
  /** The position a restored backup is consistent with (MariaDB's GTID), for a replica's start. */
  restoredPosition: string;
}

export function instancePaths(layout: EngineLayout): InstancePaths {
  return {
    baseDir: layout.baseDir,
    dataDir: join(layout.baseDir, 'data'),
    runDir: join(layout.baseDir, 'run'),
    initializedMarker: join(layout.baseDir, 'initialized'),
    stoppedMarker: join(layout.baseDir, 'stopped'),
    restoredPosition: join(layout.baseDir, 'restored-position'),
  };
}

export const mariadbPaths = (layout: EngineLayout) => ({
  configFile: join(layout.baseDir, 'my.cnf'),
  socket: join(layout.baseDir, 'run', 'mysqld.sock'),
  /** The name of the build (lib/catalog/mariadb-versions.ts) that runs the data dir. */
  buildFile: join(layout.baseDir, 'mariadb-build'),
});

/**
 * The MariaDB build that runs an instance: the one its build file names (written at init and by
 * an upgrade), else, before there is one (a restore), the instance's datastore version's.
 */
export function mariadbBuildOf(layout: EngineLayout): MariadbBuild {
  const { buildFile } = mariadbPaths(layout);
  const written = existsSync(buildFile) ? readFileSync(buildFile, 'utf8').trim() : undefined;
  return mariadbBuildOrSystem(written || layout.datastoreVersion);
}

export const postgresqlPaths = (layout: EngineLayout) => ({
  socketDir: join(layout.baseDir, 'run'),
  hbaFile: join(layout.baseDir, 'data', 'pg_hba.conf'),
  /** The agent's own settings, included by postgresql.conf (postgresql.ts). */
  confFile: join(layout.baseDir, 'data', 'troveless.conf'),
});

export const redisPaths = (layout: EngineLayout) => ({
  socket: join(layout.baseDir, 'run', 'redis.sock'),
  passwordFile: join(layout.baseDir, 'admin-password'),
});

/** The service user an engine's files belong to, and the mode its data dir must have. */
export const SERVICE_USER: Record<BackupEngine, { user: string; dataDirMode: number }> = {
  mariadb: { user: 'mysql', dataDirMode: 0o750 },
  postgresql: { user: 'postgres', dataDirMode: 0o700 },
  redis: { user: 'redis', dataDirMode: 0o750 },
};

/** Who the engine runs as: the instance's own OS user when it has one, else the service user. */
export const engineUser = (engine: BackupEngine, layout: EngineLayout): string =>
  layout.osUser ?? SERVICE_USER[engine].user;
