import type { ParameterRule } from './index.ts';

// PostgreSQL 15. Values and bounds are in each setting's pg_settings.unit, which is what a bare
// number means to PostgreSQL: shared_buffers, wal_buffers, temp_buffers and effective_cache_size
// in 8 kB blocks; work_mem, maintenance_work_mem, temp_file_limit, log_temp_files in kB;
// max_wal_size, min_wal_size, wal_keep_size in MB; track_activity_query_size in bytes;
// *_timeout, *_delay (except commit_delay, in microseconds), log_*_duration* in ms;
// checkpoint_timeout, autovacuum_naptime, tcp_keepalives_* in seconds.
// restart_required is pg_settings.context = 'postmaster'; every other context (sighup,
// superuser, superuser-backend, user) takes ALTER SYSTEM and a reload. Enums are strings.
// Left out on purpose: settings whose wrong value stops the server from starting or breaks the
// agent (listen_addresses, port, wal_level, huge_pages, shared_preload_libraries,
// superuser_reserved_connections) or loses data (fsync).

const INT_MAX = 2_147_483_647;

const int = (name: string, min: number, max: number, restart_required = false): ParameterRule => ({
  name,
  type: 'integer',
  min,
  max,
  restart_required,
});
const float = (name: string, min: number, max: number): ParameterRule => ({
  name,
  type: 'float',
  min,
  max,
  restart_required: false,
});
const bool = (name: string): ParameterRule => ({ name, type: 'boolean', restart_required: false });
const str = (name: string): ParameterRule => ({ name, type: 'string', restart_required: false });

export const POSTGRESQL_PARAMETERS: readonly ParameterRule[] = [
  // Connections and processes (postmaster: restart)
  int('max_connections', 10, 262_143, true),
  int('max_worker_processes', 0, 262_143, true),
  int('max_wal_senders', 0, 262_143, true),
  int('max_replication_slots', 0, 262_143, true),
  int('max_prepared_transactions', 0, 262_143, true),
  int('max_locks_per_transaction', 10, INT_MAX, true),
  int('max_files_per_process', 64, INT_MAX, true),
  int('autovacuum_max_workers', 1, 262_143, true),
  int('autovacuum_freeze_max_age', 100_000, 2_000_000_000, true),
  int('track_activity_query_size', 100, 1_048_576, true),
  // Memory (postmaster ones in 8 kB blocks; the rest in their unit, see above)
  int('shared_buffers', 16, 1_073_741_823, true),
  int('wal_buffers', -1, 262_143, true),
  int('work_mem', 64, INT_MAX),
  int('maintenance_work_mem', 1_024, INT_MAX),
  int('effective_cache_size', 1, INT_MAX),
  int('temp_buffers', 100, 1_073_741_823),
  float('hash_mem_multiplier', 1, 1_000),
  int('temp_file_limit', -1, INT_MAX),
  // Parallelism and planner
  int('max_parallel_workers', 0, 1_024),
  int('max_parallel_workers_per_gather', 0, 1_024),
  int('max_parallel_maintenance_workers', 0, 1_024),
  int('effective_io_concurrency', 0, 1_000),
  float('random_page_cost', 0, 1_000_000),
  float('seq_page_cost', 0, 1_000_000),
  int('default_statistics_target', 1, 10_000),
  bool('jit'),
  // WAL, checkpoints and durability
  str('synchronous_commit'),
  bool('full_page_writes'),
  str('wal_compression'),
  int('max_wal_size', 2, INT_MAX),
  int('min_wal_size', 2, INT_MAX),
  int('wal_keep_size', 0, INT_MAX),
  int('checkpoint_timeout', 30, 86_400),
  float('checkpoint_completion_target', 0, 1),
  int('wal_writer_delay', 1, 10_000),
  int('commit_delay', 0, 100_000),
  int('bgwriter_delay', 10, 10_000),
  int('bgwriter_lru_maxpages', 0, 1_073_741_823),
  // Timeouts (ms unless noted)
  int('statement_timeout', 0, INT_MAX),
  int('lock_timeout', 0, INT_MAX),
  int('idle_in_transaction_session_timeout', 0, INT_MAX),
  int('idle_session_timeout', 0, INT_MAX),
  int('deadlock_timeout', 1, INT_MAX),
  int('tcp_keepalives_idle', 0, INT_MAX),
  int('tcp_keepalives_interval', 0, INT_MAX),
  // Autovacuum
  bool('autovacuum'),
  int('autovacuum_naptime', 1, 2_147_483),
  float('autovacuum_vacuum_scale_factor', 0, 100),
  float('autovacuum_analyze_scale_factor', 0, 100),
  int('autovacuum_vacuum_cost_limit', -1, 10_000),
  float('autovacuum_vacuum_cost_delay', -1, 100),
  int('vacuum_cost_limit', 1, 10_000),
  // Logging
  int('log_min_duration_statement', -1, INT_MAX),
  int('log_autovacuum_min_duration', -1, INT_MAX),
  str('log_statement'),
  str('log_min_messages'),
  bool('log_connections'),
  bool('log_disconnections'),
  bool('log_lock_waits'),
  bool('log_checkpoints'),
  int('log_temp_files', -1, INT_MAX),
  bool('track_io_timing'),
  // Client defaults
  str('timezone'),
  str('default_transaction_isolation'),
];
