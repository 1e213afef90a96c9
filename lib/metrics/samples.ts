import { BatchGetCommand, type BatchGetCommandOutput, PutCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';

// An instance's metrics for the last hour at heartbeat resolution (issue 14 #5): what each
// heartbeat carries (service status, volume use) and the engine's own counters (connections,
// its cumulative query or command count, replication lag when it is a replica), kept in the
// operations table as a ring of small items, `metrics#<instance>#<slot>` with slot =
// floor(sent / interval) mod slots, each expiring (TTL) an hour after its sample. One item per
// sample rather than one item holding the hour: DynamoDB bills a write by the whole item's size,
// so a 60-slot item (~7 KB) would cost 7 write units per heartbeat where a ~150-byte item costs 1
// (docs/cost.md). A sample an hour old is overwritten, never appended to.

export const WINDOW_SECONDS = 3600;

export interface EngineCounters {
  connections?: number;
  /** Cumulative statements (SQL engines) or commands (Redis) since the engine started. */
  queries?: number;
  /** Seconds behind the source; null or absent when the instance is no replica. */
  replication_lag_seconds?: number | null;
}

export interface Sample extends EngineCounters {
  /** The heartbeat's `sent` (Unix seconds). */
  t: number;
  service_status: string;
  volume_used_bytes?: number;
}

const keyOf = (instanceId: string, slot: number) => ({ id: `metrics#${instanceId}#${slot}` });

function slots(intervalSeconds: number): number {
  return Math.min(3600, Math.ceil(WINDOW_SECONDS / Math.max(1, intervalSeconds)) + 1);
}

export async function recordSample(
  projectId: string,
  instanceId: string,
  sample: Sample,
  intervalSeconds = config.reportIntervalSeconds,
): Promise<void> {
  const slot = Math.floor(sample.t / Math.max(1, intervalSeconds)) % slots(intervalSeconds);
  await documents.send(
    new PutCommand({
      TableName: config.operationsTable,
      Item: {
        ...keyOf(instanceId, slot),
        sample,
        project_id: projectId,
        instance_id: instanceId,
        expires_at: Math.floor(sample.t) + WINDOW_SECONDS,
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
  intervalSeconds = config.reportIntervalSeconds,
): Promise<Sample[]> {
  const keys = Array.from({ length: slots(intervalSeconds) }, (_, slot) => keyOf(instanceId, slot));
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
  return items
    .filter((item) => item.project_id === projectId && item.instance_id === instanceId)
    .map((item) => item.sample as Sample)
    .filter((s) => typeof s?.t === 'number' && s.t > now - WINDOW_SECONDS && s.t <= now + 60)
    .sort((a, b) => a.t - b.t);
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
