import { projectHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { quotaUsage } from '#lib/quotas';
import type { LimitsResponse } from '#lib/quotas/schemas';

/**
 * `GET /limits`: the project's absolute limits. Trove adds its HTTP rate limits here; Troveless
 * enforces none of its own (API Gateway throttles), so it lists none rather than invent them.
 */
export const handler = projectHandler(async (_event, caller) => {
  const usage = await quotaUsage(caller.projectId);
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
    ],
  } satisfies LimitsResponse);
});
