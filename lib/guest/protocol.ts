import { z } from 'zod';

// The wire protocol between the control plane and a guest agent. Every message is a JSON body
// signed with the instance's own key (HMAC-SHA256), so a guest can neither forge another
// instance's reports nor accept orders that the control plane did not sign (Trove shares one
// broker and, without secure RPC, trusts every message on it). The envelope and the order are in
// signing.ts (no zod: the guest agent reads them as it starts); the reports' schemas are here.

export {
  type GuestRequest,
  nowSeconds,
  openEnvelope,
  parseGuestRequest,
  type SignedEnvelope,
  seal,
  sign,
  verifySignature,
} from './signing.ts';

/** The errors a guest answers an order with: Trove's exception names (the API keeps their status). */
export type GuestErrorName =
  | 'DatabaseAlreadyExists'
  | 'DatabaseNotFound'
  | 'UserAlreadyExists'
  | 'UserNotFound'
  | 'BadRequest'
  | 'NotImplemented'
  // Guest logs (agent/logs/): an unknown log, a log the caller may not see, a store that failed.
  | 'LogNotFound'
  | 'LogAccessForbidden'
  | 'LogsNotAvailable';

/** A member's replication as its engine reports it (agent/engines/manager.ts ReplicationStatus). */
export const ReplicationReport = z.object({
  role: z.enum(['source', 'replica']),
  source: z.string().max(300).optional(),
  running: z.boolean().optional(),
  lag_seconds: z.number().optional(),
  lag_bytes: z.number().optional(),
  position: z.string().max(4000).optional(),
  error: z.string().max(2000).optional(),
  /**
   * A replica of a set with automatic failover: whether its probe of the source's engine
   * answered (agent/source-probe.ts); false is its vote that the source is gone.
   */
  source_reachable: z.boolean().optional(),
  /**
   * This member cannot follow its source without a re-seed (agent/engines/reseed.ts): since when
   * (seconds; the control plane re-seeds once per value) and the engine's reason.
   */
  reseed_required: z.object({ since: z.number(), reason: z.string().max(1000) }).optional(),
  /** The set's term this member knows (the newest any order of its carried). */
  term: z.number().int().optional(),
});
export type ReplicationReport = z.infer<typeof ReplicationReport>;

const Counters = z.object({
  connections: z.number().optional(),
  queries: z.number().optional(),
  replication_lag_seconds: z.number().nullable().optional(),
});

/** A heartbeat's samples at most: a bucket's (TROVELESS_METRICS_SAMPLES_PER_WRITE), with room. */
export const MAX_SAMPLES_PER_REPORT = 60;

/** Guest → conductor, on the shared conductor queue. */
export const GuestReport = z.discriminatedUnion('method', [
  z.object({
    method: z.literal('heartbeat'),
    instance_id: z.string(),
    sent: z.number(),
    payload: z.object({
      /** Trove's service-status description: "healthy", "running", "shutdown", "failed to spawn", ... */
      service_status: z.string(),
      /** Filesystem use of the data volume, so show needs no synchronous guest call. */
      volume: z.object({ total_bytes: z.number(), used_bytes: z.number() }).optional(),
      /**
       * The engine's own counters (lib/metrics/samples.ts) at this heartbeat: what agents sent
       * before samples went in batches, each kept as a sample of its own.
       */
      metrics: Counters.optional(),
      /** A bucket's metrics samples, one per report interval (agent/samples.ts). */
      samples: z
        .array(
          Counters.extend({
            t: z.number(),
            service_status: z.string().max(100),
            volume_used_bytes: z.number().optional(),
          }),
        )
        .max(MAX_SAMPLES_PER_REPORT)
        .optional(),
      /** How replication stands on a member of a replica set (issue 12 #3). */
      replication: ReplicationReport.optional(),
    }),
  }),
  z.object({
    method: z.literal('operation_result'),
    instance_id: z.string(),
    sent: z.number(),
    payload: z.object({
      operation_id: z.string(),
      operation: z.string(),
      reply_token: z.string().optional(),
      ok: z.boolean(),
      result: z.unknown().optional(),
      error: z.object({ type: z.string(), message: z.string() }).optional(),
    }),
  }),
]);
export type GuestReport = z.infer<typeof GuestReport>;
