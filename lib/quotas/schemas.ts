import { z } from 'zod';

// Body of `PUT /mgmt/quotas/{project}` (Trove's mgmt quota update): resource name to limit.
export const UpdateQuotasRequest = z.object({ quotas: z.record(z.string(), z.number().int()) });
export type UpdateQuotasRequest = z.infer<typeof UpdateQuotasRequest>;

// Answers, as the OpenAPI description states them (lib/openapi).
/** Trove's LimitViews: the absolute limits first, then one entry per HTTP rate limit. */
export const AbsoluteLimitsView = z.looseObject({
  verb: z.literal('ABSOLUTE'),
  max_instances: z.int(),
  max_backups: z.int(),
  max_volumes: z.int(),
  max_ram: z.int(),
});
export const RateLimitView = z.object({
  nextAvailable: z.string(),
  remaining: z.int(),
  unit: z.enum(['SECOND', 'MINUTE', 'HOUR', 'DAY']),
  value: z.int(),
  verb: z.string(),
  uri: z.string(),
  regex: z.string(),
});
export const LimitsResponse = z.object({ limits: z.array(z.union([AbsoluteLimitsView, RateLimitView])) });

export type LimitsResponse = z.infer<typeof LimitsResponse>;

export const QuotasResponse = z.object({
  quotas: z.array(z.object({ resource: z.string(), in_use: z.int(), reserved: z.int(), limit: z.int() })),
});

/** `PUT /mgmt/quotas/{project}`: the limits set, as Trove echoes them. */
export const UpdatedQuotasResponse = z.object({ quotas: z.record(z.string(), z.int()) });
