import { describe, expect, it } from 'vitest';
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
