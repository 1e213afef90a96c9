import type { EngineLayout, EngineManager } from './manager.ts';

// Trove's datastore manager names → the local engine that serves them. Trove's "mysql" runs on
// MariaDB here: Debian ships no MySQL server, and the wire protocol and SQL the agent uses are shared.

export type DatastoreManager = 'mysql' | 'mariadb' | 'postgresql' | 'redis';

export const DATASTORE_MANAGERS: readonly DatastoreManager[] = ['mysql', 'mariadb', 'postgresql', 'redis'];

/**
 * The manager of the one engine this guest serves. Only its module is loaded (each pulls in its
 * engine's client library: mysql2, pg or ioredis), so an agent starts and stays without the
 * other two: the agent's start is on the path of every create.
 */
export async function createEngineManager(
  manager: DatastoreManager,
  layout: EngineLayout,
): Promise<EngineManager> {
  switch (manager) {
    case 'mysql':
    case 'mariadb':
      return new (await import('./mariadb.ts')).MariaDbManager(layout);
    case 'postgresql':
      return new (await import('./postgresql.ts')).PostgresqlManager(layout);
    case 'redis':
      return new (await import('./redis.ts')).RedisManager(layout);
    default:
      // Reached from untyped input (a datastore manager read from the guest config).
      throw new Error(
        `unknown datastore manager "${String(manager)}"; expected one of ${DATASTORE_MANAGERS.join(', ')}`,
      );
  }
}

export type * from './manager.ts';
