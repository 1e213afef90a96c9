import { z } from 'zod';

// Body of `PUT /mgmt/quotas/{project}` (Trove's mgmt quota update): resource name to limit.
export const UpdateQuotasRequest = z.object({ quotas: z.record(z.string(), z.number().int()) });
export type UpdateQuotasRequest = z.infer<typeof UpdateQuotasRequest>;

// Answers, as the OpenAPI description states them (lib/openapi).
export const LimitsResponse = z.object({
  limits: z.array(
    z.looseObject({
      verb: z.literal('ABSOLUTE'),
      max_instances: z.int(),
      max_backups: z.int(),
      max_volumes: z.int(),
      max_ram: z.int(),
    }),
  ),
});

export type LimitsResponse = z.infer<typeof LimitsResponse>;

export const QuotasResponse = z.object({
  quotas: z.array(z.object({ resource: z.string(), in_use: z.int(), reserved: z.int(), limit: z.int() })),
});

/** `PUT /mgmt/quotas/{project}`: the limits set, as Trove echoes them. */
export const UpdatedQuotasResponse = z.object({ quotas: z.record(z.string(), z.int()) });
