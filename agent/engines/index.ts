import type { EngineLayout, EngineManager } from './manager.ts';
import { MariaDbManager } from './mariadb.ts';
import { PostgresqlManager } from './postgresql.ts';
import { RedisManager } from './redis.ts';

// Trove's datastore manager names → the local engine that serves them. Trove's "mysql" runs on
// MariaDB here: Debian ships no MySQL server, and the wire protocol and SQL the agent uses are shared.

export type DatastoreManager = 'mysql' | 'mariadb' | 'postgresql' | 'redis';

export const DATASTORE_MANAGERS: readonly DatastoreManager[] = ['mysql', 'mariadb', 'postgresql', 'redis'];

export function createEngineManager(manager: DatastoreManager, layout: EngineLayout): EngineManager {
  switch (manager) {
    case 'mysql':
    case 'mariadb':
      return new MariaDbManager(layout);
    case 'postgresql':
      return new PostgresqlManager(layout);
    case 'redis':
      return new RedisManager(layout);
    default:
      // Reached from untyped input (a datastore manager read from the guest config).
      throw new Error(
        `unknown datastore manager "${String(manager)}"; expected one of ${DATASTORE_MANAGERS.join(', ')}`,
      );
  }
}

export { EngineStartError } from './base.ts';
export type * from './manager.ts';
