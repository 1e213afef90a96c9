import { projectHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { rateLimitViews } from '#lib/limits/index';
import { quotaUsage } from '#lib/quotas';
import type { LimitsResponse } from '#lib/quotas/schemas';

/**
 * `GET /limits`: the project's absolute limits (its quotas), then Trove's HTTP rate limits with
 * what is left of each (this request already counted, as in Trove).
 */
export const handler = projectHandler(async (_event, caller) => {
  const [usage, rates] = await Promise.all([quotaUsage(caller.projectId), rateLimitViews(caller)]);
  const limit = (r: string) => usage.find((u) => u.resource === r)?.limit ?? -1;
  return json(200, {
    limits: [
      {
        verb: 'ABSOLUTE',
        max_instances: limit('instances'),
        max_backups: limit('backups'),
        max_volumes: limit('volumes'),
        max_ram: limit('ram'),
      },
      ...rates,
    ],
  } satisfies LimitsResponse);
});
