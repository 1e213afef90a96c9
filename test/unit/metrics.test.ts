import { describe, expect, it } from 'vitest';
import { SampleBatches } from '../../agent/samples.ts';
import { metricsPoints, type Sample } from '../../lib/metrics/samples.ts';

// GET /instances/{id}/metrics: rates come from two consecutive samples' cumulative counters.

const at = (t: number, extra: Partial<Sample> = {}): Sample => ({ t, service_status: 'healthy', ...extra });

describe('metrics points', () => {
  it('derives queries per second from consecutive counters, oldest first', () => {
    const points = metricsPoints([
      at(1_000, { queries: 100, connections: 2 }),
      at(1_060, { queries: 700, connections: 5, volume_used_bytes: 4096 }),
      at(1_120, { queries: 730 }),
    ]);
    expect(points.map((p) => p.queries_per_second)).toEqual([null, 10, 0.5]);
    expect(points[1]).toMatchObject({
      connections: 5,
      volume_used_bytes: 4096,
      time: '1970-01-01T00:17:40Z',
    });
    expect(points[2]?.connections).toBeNull();
  });

  it('shows no rate across an engine restart (the counter went back) or a point without counters', () => {
    const points = metricsPoints([
      at(0, { queries: 5_000 }),
      at(60, { queries: 10 }),
      at(120, { service_status: 'shutdown' }),
      at(180, { queries: 70 }),
    ]);
    expect(points.map((p) => p.queries_per_second)).toEqual([null, null, null, null]);
    expect(points[2]?.service_status).toBe('shutdown');
  });

  it('keeps replication lag as reported, null for an instance that is no replica', () => {
    const points = metricsPoints([
      at(0, { replication_lag_seconds: 3 }),
      at(60, { replication_lag_seconds: null }),
      at(120),
    ]);
    expect(points.map((p) => p.replication_lag_seconds)).toEqual([3, null, null]);
  });
});

describe('a guest’s metrics samples, kept a bucket at a time (agent/samples.ts)', () => {
  const buckets = { intervalSeconds: 60, samplesPerWrite: 5 };
  const take = (batches: SampleBatches, times: number[]) =>
    times.map((t) => batches.add(at(t))?.map((s) => s.t)).filter((due) => due !== undefined);

  it('sends five samples of a bucket in one write, as soon as the bucket is full', () => {
    // Heartbeats every 60 s from t = 3000 (bucket 10 runs 3000-3299): one write per 5 samples.
    expect(take(new SampleBatches(buckets), [3000, 3060, 3120, 3180, 3240, 3300, 3360])).toEqual([
      [3000, 3060, 3120, 3180, 3240],
    ]);
  });

  it('sends a bucket that missed a sample once the next bucket begins, never mixing the two', () => {
    expect(take(new SampleBatches(buckets), [3010, 3130, 3190, 3250, 3310, 3370])).toEqual([
      [3010, 3130, 3190, 3250],
    ]);
  });

  it('keeps one sample per interval however often the guest heartbeats (a set with automatic failover)', () => {
    const everySecond = Array.from({ length: 601 }, (_, i) => 3000 + i);
    const due = take(new SampleBatches(buckets), everySecond);
    expect(due).toEqual([
      [3000, 3060, 3120, 3180, 3240],
      [3300, 3360, 3420, 3480, 3540],
    ]);
  });

  it('with one sample per write, sends each at once, still one per interval', () => {
    expect(take(new SampleBatches({ intervalSeconds: 60, samplesPerWrite: 1 }), [3000, 3030, 3061])).toEqual([
      [3000],
      [3061],
    ]);
  });
});
