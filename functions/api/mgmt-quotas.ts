import { z } from 'zod';
import { BadRequest, NotFound, Unauthorized } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import { projectHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { quotaUsage, RESOURCES, type Resource, setQuotaLimits } from '#lib/quotas';
import { validate } from '#lib/validation';

const target = (event: { pathParameters?: Record<string, string | undefined> }) =>
  event.pathParameters?.target_project_id ?? '';

/** `GET /mgmt/quotas/{project}`: admins, or a project asking about itself. */
export const show = projectHandler(async (event, caller) => {
  const project = target(event);
  if (!caller.isAdmin && project !== caller.projectId)
    throw new Unauthorized('User does not have admin privileges.');
  const usage = await quotaUsage(project);
  return json(200, {
    quotas: usage.map((u) => ({ resource: u.resource, in_use: u.in_use, reserved: 0, limit: u.limit })),
  });
});

const UpdateQuotas = z.object({ quotas: z.record(z.string(), z.number().int()) });

/** `PUT /mgmt/quotas/{project}`: admin only; -1 means unlimited, an unknown resource is 404. */
export const update = projectHandler(async (event, caller) => {
  if (!caller.isAdmin) throw new Unauthorized('User does not have admin privileges.');
  const { quotas } = validate(UpdateQuotas, parsedBody(event));
  for (const [resource, limit] of Object.entries(quotas)) {
    if (!RESOURCES.includes(resource as Resource))
      throw new NotFound(`Quota resource ${resource} cannot be found.`);
    if (limit < -1) throw new BadRequest(`Quota limit for ${resource} must be -1 or more, got ${limit}.`);
  }
  await setQuotaLimits(target(event), quotas as Partial<Record<Resource, number>>);
  return json(200, { quotas });
});
