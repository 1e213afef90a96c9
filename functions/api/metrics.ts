import type { z } from 'zod';
import { config } from '#lib/config';
import { projectHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { loadInstance } from '#lib/instances/operations';
import { bucketSeconds } from '#lib/metrics/buckets';
import { defaultBuckets, loadSamples, metricsPoints, WINDOW_SECONDS } from '#lib/metrics/samples';
import type { MetricsResponse } from '#lib/metrics/schemas';

/** `GET /instances/{id}/metrics`: what the heartbeats of the last hour carried (no guest call). */
export const handler = projectHandler(async (event, caller) => {
  const item = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  const points = metricsPoints(await loadSamples(item.project_id, item.id));
  const body: z.infer<typeof MetricsResponse> = {
    metrics: {
      instance_id: item.id,
      interval_seconds: config.reportIntervalSeconds,
      batch_seconds: bucketSeconds(defaultBuckets()),
      window_seconds: WINDOW_SECONDS,
      points,
    },
  };
  return json(200, body);
});
