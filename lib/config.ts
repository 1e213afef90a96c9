// Settings read from the environment once per cold start. Every variable is listed in the README.
function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

export const config = {
  /** Public base URL of the API (scheme://host:port) used in links and the catalog; else from the request. */
  publicUrl: process.env.TROVELESS_PUBLIC_URL?.replace(/\/+$/, '') || undefined,
  regionName: process.env.TROVELESS_REGION_NAME || 'RegionOne',
  tokenTtlSeconds: intFromEnv('TROVELESS_TOKEN_TTL', 3600),
  /** Users, projects, role assignments and token revocations (lib/identity/directory.ts). */
  identityTable: process.env.TROVELESS_IDENTITY_TABLE || 'troveless-dev-identity',
  /** Keystone's lockout_failure_attempts and lockout_duration (seconds). */
  lockoutFailureAttempts: intFromEnv('TROVELESS_LOCKOUT_FAILURE_ATTEMPTS', 6),
  lockoutDurationSeconds: intFromEnv('TROVELESS_LOCKOUT_DURATION', 1800),
  /** How long a "not revoked" answer is trusted per function (lib/identity/revocations.ts). */
  revocationCacheSeconds: intFromEnv('TROVELESS_REVOCATION_CACHE_SECONDS', 5),
  instancesTable: process.env.TROVELESS_INSTANCES_TABLE || 'troveless-dev-instances',
  /** Trove's clusters (lib/clusters): their members are items of the instances table. */
  clustersTable: process.env.TROVELESS_CLUSTERS_TABLE || 'troveless-dev-clusters',
  pageSize: intFromEnv('TROVELESS_PAGE_SIZE', 20),
  quotasTable: process.env.TROVELESS_QUOTAS_TABLE || 'troveless-dev-quotas',
  operationsTable: process.env.TROVELESS_OPERATIONS_TABLE || 'troveless-dev-operations',
  configurationsTable: process.env.TROVELESS_CONFIGURATIONS_TABLE || 'troveless-dev-configurations',
  modulesTable: process.env.TROVELESS_MODULES_TABLE || 'troveless-dev-modules',
  backupsTable: process.env.TROVELESS_BACKUPS_TABLE || 'troveless-dev-backups',
  backupBucket: process.env.TROVELESS_BACKUP_BUCKET || 'troveless-dev-backups',
  backupStrategiesTable: process.env.TROVELESS_BACKUP_STRATEGIES_TABLE || 'troveless-dev-backup-strategies',
  /** Trove's agent_call_low_timeout / agent_call_high_timeout for calls an API request waits on;
   * capped below API Gateway's 29 s limit. */
  callLowTimeoutSeconds: intFromEnv('TROVELESS_AGENT_CALL_LOW_TIMEOUT', 15),
  callHighTimeoutSeconds: Math.min(intFromEnv('TROVELESS_AGENT_CALL_HIGH_TIMEOUT', 180), 25),
  /**
   * Trove's agent_heartbeat_expiry: a guest silent this long shows operating_status ERROR. Three
   * heartbeat intervals, so one lost heartbeat and a slow queue never show a live guest as dead.
   */
  heartbeatExpirySeconds: intFromEnv('TROVELESS_AGENT_HEARTBEAT_EXPIRY', 180),
  /**
   * Automatic failover (lib/replication/failover.ts): seconds the source's engine must have been
   * silent (no heartbeat that found it answering) before its replicas' votes start a failover.
   * Far below the status expiry: members of a set with automatic failover heartbeat every second.
   */
  failoverExpirySeconds: intFromEnv('TROVELESS_FAILOVER_EXPIRY_SECONDS', 5),
  /**
   * Trove's report_interval: seconds between guest heartbeats. 60, not Trove's 30: every
   * heartbeat is an SQS send, a share of a conductor invocation and a table write, about half of
   * an idle instance's cost at 30 s (docs/cost.md, `npm run bench -- cost`).
   */
  reportIntervalSeconds: intFromEnv('TROVELESS_REPORT_INTERVAL', 60),
  /**
   * GET /instances/{id}/metrics: a guest's samples (one per report interval) are kept this many to
   * a write (lib/metrics/samples.ts). 1 is a write per heartbeat ($0.027 an instance-month at
   * 60 s); 5, a write per 5 minutes ($0.0055), the newest points up to 5 minutes late. At most 8:
   * a batch's item must stay under 1 KB (one write unit).
   */
  metricsSamplesPerWrite: Math.min(8, intFromEnv('TROVELESS_METRICS_SAMPLES_PER_WRITE', 5)),
  /** Trove's max_accepted_volume_size (GB). */
  maxAcceptedVolumeSize: intFromEnv('TROVELESS_MAX_ACCEPTED_VOLUME_SIZE', 10),
  /** Buckets of Trove's HTTP rate limits, per project and limit (lib/limits). */
  rateLimitsTable: process.env.TROVELESS_RATE_LIMITS_TABLE || 'troveless-dev-rate-limits',
  /** Trove's guest_log_limit: bytes one publish uploads at most. */
  guestLogLimit: intFromEnv('TROVELESS_GUEST_LOG_LIMIT', 1_000_000),
  /** Bytes per published log object at most (Trove uploads guest_log_limit-sized objects). */
  guestLogChunkSize: intFromEnv('TROVELESS_GUEST_LOG_CHUNK_SIZE', 1_000_000),
  /** Trove's guest_log_expiry (seconds), set from TROVELESS_GUEST_LOG_EXPIRY_DAYS by serverless/guest-logs.cjs, as the bucket's rule. */
  guestLogExpirySeconds: intFromEnv('TROVELESS_GUEST_LOG_EXPIRY', 2_592_000),
  /** The most replicas one create may ask for (Trove's schema allows replica_count 1..3). */
  maxReplicaCount: intFromEnv('TROVELESS_MAX_REPLICA_COUNT', 3),
  conductorQueue: process.env.TROVELESS_CONDUCTOR_QUEUE || 'troveless-dev-conductor',
  /**
   * The guests' doorbell (lib/guest/doorbell.ts): the WebSocket URL guests connect to (wss:// of
   * the stack's WebSocket API). Unset: guests long-poll their queues all the time, as before.
   */
  doorbellUrl: process.env.TROVELESS_DOORBELL_URL?.startsWith('ws')
    ? process.env.TROVELESS_DOORBELL_URL
    : undefined,
  /** A guest with a doorbell long-polls this long after an order, then rests until rung. */
  doorbellBusySeconds: intFromEnv('TROVELESS_DOORBELL_BUSY_SECONDS', 60),
  /** ...and polls at rest this often anyway: the most a lost ring delays an order (docs/cost.md). */
  doorbellRestPollSeconds: intFromEnv('TROVELESS_DOORBELL_REST_POLL_SECONDS', 300),
  stage: process.env.TROVELESS_STAGE || 'dev',
};
