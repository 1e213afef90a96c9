import type { ParameterRule } from './index.ts';

// Redis 7.0, by the names CONFIG GET/SET use (7.0's listpack names, not the older ziplist
// aliases). Units are Redis's own: sizes in bytes, timeout/tcp-keepalive/repl-timeout/
// min-replicas-max-lag in seconds, busy-reply-threshold and latency-monitor-threshold in ms,
// slowlog-log-slower-than in microseconds. restart_required marks Redis 7.0's immutable configs
// (CONFIG SET answers "can't set immutable config"): databases, tcp-backlog, rdbchecksum and
// io-threads; everything else takes CONFIG SET. Booleans are Redis's yes/no, given as JSON
// booleans. requirepass is Trove's root password here, not a configuration parameter.

const INT_MAX = 2_147_483_647;
const TIB = 1_099_511_627_776;

const int = (name: string, min: number, max: number, restart_required = false): ParameterRule => ({
  name,
  type: 'integer',
  min,
  max,
  restart_required,
});
const bool = (name: string, restart_required = false): ParameterRule => ({
  name,
  type: 'boolean',
  restart_required,
});
const str = (name: string): ParameterRule => ({ name, type: 'string', restart_required: false });

export const REDIS_PARAMETERS: readonly ParameterRule[] = [
  // Memory and eviction
  int('maxmemory', 0, TIB),
  str('maxmemory-policy'),
  int('maxmemory-samples', 1, 64),
  int('maxmemory-eviction-tenacity', 0, 100),
  bool('lazyfree-lazy-eviction'),
  bool('lazyfree-lazy-expire'),
  bool('lazyfree-lazy-server-del'),
  bool('lazyfree-lazy-user-del'),
  bool('activedefrag'),
  int('active-expire-effort', 1, 10),
  int('hz', 1, 500),
  // Connections
  int('maxclients', 1, 65_000),
  int('timeout', 0, INT_MAX),
  int('tcp-keepalive', 0, INT_MAX),
  int('tcp-backlog', 1, 65_535, true),
  int('io-threads', 1, 128, true),
  int('databases', 1, 10_000, true),
  int('client-query-buffer-limit', 1_048_576, INT_MAX),
  int('proto-max-bulk-len', 1_048_576, INT_MAX),
  int('busy-reply-threshold', 0, INT_MAX),
  // Persistence and durability
  str('save'),
  bool('stop-writes-on-bgsave-error'),
  bool('rdbcompression'),
  bool('rdbchecksum', true),
  bool('appendonly'),
  str('appendfsync'),
  bool('no-appendfsync-on-rewrite'),
  int('auto-aof-rewrite-percentage', 0, INT_MAX),
  int('auto-aof-rewrite-min-size', 0, TIB),
  // Replication
  int('repl-backlog-size', 16_384, TIB),
  int('repl-timeout', 1, INT_MAX),
  int('min-replicas-to-write', 0, INT_MAX),
  int('min-replicas-max-lag', 0, INT_MAX),
  // Logging and monitoring
  str('loglevel'),
  int('slowlog-log-slower-than', -1, INT_MAX),
  int('slowlog-max-len', 0, INT_MAX),
  int('latency-monitor-threshold', 0, INT_MAX),
  str('notify-keyspace-events'),
  // Encodings
  int('hash-max-listpack-entries', 0, INT_MAX),
  int('hash-max-listpack-value', 0, INT_MAX),
  int('list-max-listpack-size', -5, INT_MAX),
  int('set-max-intset-entries', 0, INT_MAX),
  int('zset-max-listpack-entries', 0, INT_MAX),
  int('zset-max-listpack-value', 0, INT_MAX),
];
