import { z } from 'zod';

// Body of `PUT /mgmt/quotas/{project}` (Trove's mgmt quota update): resource name to limit.
export const UpdateQuotasRequest = z.object({ quotas: z.record(z.string(), z.number().int()) });
export type UpdateQuotasRequest = z.infer<typeof UpdateQuotasRequest>;
