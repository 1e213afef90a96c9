import { z } from 'zod';

// `GET /instances/{id}/metrics` (an extension route, not Trove's): the last hour at heartbeat
// resolution, kept in batches (lib/metrics/samples.ts): the newest points show up to
// `batch_seconds` late.
export const MetricsPoint = z.object({
  time: z.string(),
  service_status: z.string(),
  volume_used_bytes: z.number().nullable(),
  connections: z.number().nullable(),
  queries_per_second: z.number().nullable(),
  replication_lag_seconds: z.number().nullable(),
});

export const MetricsResponse = z.object({
  metrics: z.object({
    instance_id: z.string(),
    interval_seconds: z.number(),
    batch_seconds: z.number(),
    window_seconds: z.number(),
    points: z.array(MetricsPoint),
  }),
});
