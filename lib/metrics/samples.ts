import { BatchGetCommand, type BatchGetCommandOutput, PutCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import { intervalOf, type MetricsBuckets } from './buckets.ts';

// An instance's metrics for the last hour at heartbeat resolution (issue 14 #5): what each
// heartbeat saw (service status, volume use) and the engine's own counters (connections, its
// cumulative query or command count, replication lag when it is a replica). The guest keeps one
// sample per report interval and sends them in batches, one batch per bucket of
// `samples_per_write` intervals (agent/samples.ts), which the conductor keeps as one small item
// of the operations table, `metrics#<instance>#<slot>`, slot = the first sample's interval mod
// slots (one slot per interval of the hour: batches of any size, an older agent's single samples
// and batches sent across a change of the setting never share one), expiring (TTL) an hour after
// its last sample: a ring, overwritten, never appended to. Why batches: DynamoDB
// bills a write by the item's size rounded up to 1 KB, so a sample of ~100 bytes written alone
// costs as much as five written together (docs/cost.md: $0.027 an instance-month at 60 s, against
// $0.0055 in batches of five); the price is that the newest points show up to a bucket late.

export const WINDOW_SECONDS = 3600;

export interface EngineCounters {
  connections?: number;
  /** Cumulative statements (SQL engines) or commands (Redis) since the engine started. */
  queries?: number;
  /** Seconds behind the source; null or absent when the instance is no replica. */
  replication_lag_seconds?: number | null;
}

export interface Sample extends EngineCounters {
  /** When it was taken (Unix seconds). */
  t: number;
  service_status: string;
  volume_used_bytes?: number;
}

export const defaultBuckets = (): MetricsBuckets => ({
  intervalSeconds: config.reportIntervalSeconds,
  samplesPerWrite: config.metricsSamplesPerWrite,
});

const keyOf = (instanceId: string, slot: number) => ({ id: `metrics#${instanceId}#${slot}` });

function slots(b: MetricsBuckets): number {
  return Math.min(3600, Math.ceil(WINDOW_SECONDS / Math.max(1, b.intervalSeconds)) + 1);
}

/** Keeps one batch of samples in the slot of its first, replacing what the slot held an hour ago. */
export async function recordSamples(
  projectId: string,
  instanceId: string,
  samples: Sample[],
  b: MetricsBuckets = defaultBuckets(),
): Promise<void> {
  const first = samples[0];
  if (!first) return;
  const slot = intervalOf(first.t, b) % slots(b);
  await documents.send(
    new PutCommand({
      TableName: config.operationsTable,
      Item: {
        ...keyOf(instanceId, slot),
        samples,
        project_id: projectId,
        instance_id: instanceId,
        expires_at: Math.floor(Math.max(...samples.map((s) => s.t))) + WINDOW_SECONDS,
      },
    }),
  );
}

/** BatchGetItem takes at most 100 keys. */
const BATCH = 100;

/** The samples of the last hour, oldest first; none for an instance of another project. */
export async function loadSamples(
  projectId: string,
  instanceId: string,
  now = Date.now() / 1000,
  b: MetricsBuckets = defaultBuckets(),
): Promise<Sample[]> {
  const keys = Array.from({ length: slots(b) }, (_, slot) => keyOf(instanceId, slot));
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH) {
    let pending: Record<string, unknown>[] | undefined = keys.slice(i, i + BATCH);
    // Unprocessed keys (throttling) are asked again until none is left.
    while (pending?.length) {
      const out: BatchGetCommandOutput = await documents.send(
        new BatchGetCommand({ RequestItems: { [config.operationsTable]: { Keys: pending } } }),
      );
      items.push(...(out.Responses?.[config.operationsTable] ?? []));
      pending = out.UnprocessedKeys?.[config.operationsTable]?.Keys;
    }
  }
  return (
    items
      .filter((item) => item.project_id === projectId && item.instance_id === instanceId)
      // `sample`: an item kept before samples went in batches (gone within the hour).
      .flatMap((item) => (Array.isArray(item.samples) ? (item.samples as Sample[]) : [item.sample as Sample]))
      .filter((s) => typeof s?.t === 'number' && s.t > now - WINDOW_SECONDS && s.t <= now + 60)
      .sort((a, b) => a.t - b.t)
  );
}

export interface MetricsPoint {
  time: string;
  service_status: string;
  volume_used_bytes: number | null;
  connections: number | null;
  /** From two consecutive samples' counters; null for the first, or across an engine restart. */
  queries_per_second: number | null;
  replication_lag_seconds: number | null;
}

export function metricsPoints(samples: Sample[]): MetricsPoint[] {
  return samples.map((s, i) => {
    const before = samples[i - 1];
    const rate =
      before &&
      s.queries !== undefined &&
      before.queries !== undefined &&
      s.queries >= before.queries &&
      s.t > before.t
        ? Math.round(((s.queries - before.queries) / (s.t - before.t)) * 100) / 100
        : null;
    return {
      time: new Date(s.t * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      service_status: s.service_status,
      volume_used_bytes: s.volume_used_bytes ?? null,
      connections: s.connections ?? null,
      queries_per_second: rate,
      replication_lag_seconds: s.replication_lag_seconds ?? null,
    };
  });
}
