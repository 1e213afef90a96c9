import type { EngineLayout, EngineManager } from './manager.ts';

// Trove's datastore manager names → the local engine that serves them. Trove's "mysql" runs on
// MariaDB here: Debian ships no MySQL server, and the wire protocol and SQL the agent uses are shared.

export type DatastoreManager = 'mysql' | 'mariadb' | 'postgresql' | 'redis';

export const DATASTORE_MANAGERS: readonly DatastoreManager[] = ['mysql', 'mariadb', 'postgresql', 'redis'];

/** Each manager's module (each pulls in its engine's client library: mysql2, pg or ioredis). */
const MODULES = {
  mysql: () => import('./mariadb.ts'),
  mariadb: () => import('./mariadb.ts'),
  postgresql: () => import('./postgresql.ts'),
  redis: () => import('./redis.ts'),
} as const;

function isManager(name: string): name is DatastoreManager {
  return (DATASTORE_MANAGERS as readonly string[]).includes(name);
}

/**
 * Loads the engine's module ahead of its first use (an agent spawned ahead of its launch does it
 * while the host is still making the server); an unknown name loads nothing, and
 * createEngineManager says why.
 */
export function preloadEngine(manager: string | undefined): void {
  if (manager && isManager(manager)) MODULES[manager]().catch(() => {});
}

/**
 * The manager of the one engine this guest serves. Only its module is loaded, so an agent starts
 * and stays without the other two: the agent's start is on the path of every create.
 */
export async function createEngineManager(
  manager: DatastoreManager,
  layout: EngineLayout,
): Promise<EngineManager> {
  switch (manager) {
    case 'mysql':
    case 'mariadb':
      return new (await MODULES[manager]()).MariaDbManager(layout);
    case 'postgresql':
      return new (await MODULES.postgresql()).PostgresqlManager(layout);
    case 'redis':
      return new (await MODULES.redis()).RedisManager(layout);
    default:
      // Reached from untyped input (a datastore manager read from the guest config).
      throw new Error(
        `unknown datastore manager "${String(manager)}"; expected one of ${DATASTORE_MANAGERS.join(', ')}`,
      );
  }
}

export type * from './manager.ts';
