import type { ParameterRule } from './index.ts';

// MariaDB 10.11 (also Trove's "mysql" manager). Units are MariaDB's own: sizes in bytes, timeouts
// in seconds (max_statement_time and long_query_time are fractional seconds), counts plain.
// restart_required is the variable's READ_ONLY flag in information_schema.SYSTEM_VARIABLES: the
// rest take SET GLOBAL. Unlike MySQL 5.7, innodb_log_file_size and innodb_buffer_pool_size are
// dynamic in 10.11, and innodb_buffer_pool_instances no longer exists. Booleans are ON/OFF
// variables, given as JSON booleans. Every name is also a valid my.cnf option (tx_isolation,
// for one, is not: its option is transaction-isolation), since the overrides are written there.
// max_user_connections is left out: a server started with 0 refuses SET GLOBAL of it, so it is
// neither dynamic nor read-only.

const ONE_YEAR_S = 31_536_000;
const GIB = 1_073_741_824;
const UINT32_MAX = 4_294_967_295;

const int = (name: string, min: number, max: number, restart_required = false): ParameterRule => ({
  name,
  type: 'integer',
  min,
  max,
  restart_required,
});
const float = (name: string, min: number, max: number, restart_required = false): ParameterRule => ({
  name,
  type: 'float',
  min,
  max,
  restart_required,
});
const bool = (name: string, restart_required = false): ParameterRule => ({
  name,
  type: 'boolean',
  restart_required,
});
const str = (name: string, restart_required = false): ParameterRule => ({
  name,
  type: 'string',
  restart_required,
});

export const MARIADB_PARAMETERS: readonly ParameterRule[] = [
  // Connections and threads
  int('max_connections', 10, 100_000),
  int('max_connect_errors', 1, UINT32_MAX),
  int('back_log', 1, 65_535, true),
  int('thread_cache_size', 0, 16_384),
  int('max_prepared_stmt_count', 0, UINT32_MAX),
  // Timeouts (seconds)
  int('wait_timeout', 1, ONE_YEAR_S),
  int('interactive_timeout', 1, ONE_YEAR_S),
  int('connect_timeout', 2, ONE_YEAR_S),
  int('net_read_timeout', 1, ONE_YEAR_S),
  int('net_write_timeout', 1, ONE_YEAR_S),
  int('lock_wait_timeout', 0, ONE_YEAR_S),
  int('innodb_lock_wait_timeout', 0, 100_000_000),
  float('max_statement_time', 0, ONE_YEAR_S),
  // Memory and caches (bytes)
  int('innodb_buffer_pool_size', 2_097_152, 64 * GIB),
  int('innodb_log_file_size', 4_194_304, 64 * GIB),
  int('innodb_log_buffer_size', 2_097_152, 2_147_479_552, true),
  int('innodb_sort_buffer_size', 65_536, 67_108_864, true),
  int('key_buffer_size', 8, UINT32_MAX),
  int('sort_buffer_size', 1_024, GIB),
  int('join_buffer_size', 128, GIB),
  int('read_buffer_size', 8_192, 2_147_483_647),
  int('read_rnd_buffer_size', 1, 2_147_483_647),
  int('tmp_table_size', 1_024, UINT32_MAX),
  int('max_heap_table_size', 16_384, UINT32_MAX),
  int('bulk_insert_buffer_size', 0, UINT32_MAX),
  int('max_allowed_packet', 1_024, GIB),
  int('group_concat_max_len', 4, GIB),
  int('table_open_cache', 10, 1_048_576),
  int('table_definition_cache', 400, 2_097_152),
  int('table_open_cache_instances', 1, 64, true),
  int('innodb_open_files', 10, 1_048_576, true),
  int('open_files_limit', 0, 1_048_576, true),
  // InnoDB I/O and durability
  int('innodb_flush_log_at_trx_commit', 0, 3),
  str('innodb_flush_method', true),
  bool('innodb_doublewrite', true),
  bool('innodb_file_per_table'),
  int('innodb_io_capacity', 100, UINT32_MAX),
  int('innodb_io_capacity_max', 100, UINT32_MAX),
  int('innodb_read_io_threads', 1, 64),
  int('innodb_write_io_threads', 2, 64),
  int('innodb_purge_threads', 1, 32),
  float('innodb_max_dirty_pages_pct', 0, 99),
  int('innodb_autoinc_lock_mode', 0, 2, true),
  bool('innodb_rollback_on_timeout', true),
  bool('innodb_strict_mode'),
  bool('innodb_deadlock_detect'),
  bool('innodb_adaptive_hash_index'),
  bool('innodb_stats_on_metadata'),
  bool('innodb_stats_persistent'),
  bool('innodb_buffer_pool_dump_at_shutdown'),
  bool('innodb_buffer_pool_load_at_startup', true),
  // Binary log
  int('sync_binlog', 0, UINT32_MAX),
  str('binlog_format'),
  int('binlog_cache_size', 4_096, UINT32_MAX),
  int('max_binlog_size', 4_096, GIB),
  int('binlog_expire_logs_seconds', 0, 8_553_600),
  // Logging
  bool('slow_query_log'),
  float('long_query_time', 0, ONE_YEAR_S),
  bool('log_queries_not_using_indexes'),
  bool('general_log'),
  int('log_warnings', 0, 9),
  bool('innodb_print_all_deadlocks'),
  bool('performance_schema', true),
  // SQL behaviour
  str('sql_mode'),
  str('character_set_server'),
  str('collation_server'),
  bool('local_infile'),
];
