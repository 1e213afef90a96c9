import { MARIADB_PARAMETERS } from './mariadb.ts';
import { POSTGRESQL_PARAMETERS } from './postgresql.ts';
import { REDIS_PARAMETERS } from './redis.ts';

// The configuration parameters a datastore version accepts (Trove's validation-rules.json per
// manager, TROVE_API.md §6): what the control plane validates configuration groups against, and
// what the guest agent is told about each value (dynamic = restart_required false). The rules
// describe the engines installed here (MariaDB 10.11, PostgreSQL 15, Redis 7.0), checked against
// the running engines by test/integration/engines/*-parameters.test.ts.

export interface ParameterRule {
  name: string;
  type: 'integer' | 'float' | 'string' | 'boolean';
  /** Bounds in the engine's own unit for the parameter (each catalog says which). */
  min?: number;
  max?: number;
  restart_required: boolean;
}

export type ParameterManager = 'mysql' | 'mariadb' | 'postgresql' | 'redis';

/** A fresh copy of the rules for a datastore manager; Trove's "mysql" runs on MariaDB here. */
export function parameterRules(manager: ParameterManager): ParameterRule[] {
  return catalog(manager).map((rule) => ({ ...rule }));
}

function catalog(manager: ParameterManager): readonly ParameterRule[] {
  switch (manager) {
    case 'mysql':
    case 'mariadb':
      return MARIADB_PARAMETERS;
    case 'postgresql':
      return POSTGRESQL_PARAMETERS;
    case 'redis':
      return REDIS_PARAMETERS;
    default:
      throw new Error(`no configuration parameters for datastore manager "${String(manager)}"`);
  }
}
