import { QueryCommand, type TransactWriteCommandInput, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from './config.ts';
import { documents } from './dynamo.ts';
import { BadRequest, Forbidden, NotFound, Unauthorized } from './errors.ts';
import type { UpdateQuotasRequest } from './quotas/schemas.ts';

// Trove's per-project quotas (DbQuotaDriver): a limit and an in_use count per resource. Usage
// changes in the same DynamoDB transaction as the items it counts, so a failed create never
// leaves a reservation behind and two racing creates cannot both pass the last free slot.
export const RESOURCES = ['instances', 'ram', 'volumes', 'backups'] as const;
export type Resource = (typeof RESOURCES)[number];

function defaultLimit(resource: Resource): number {
  const env: Record<Resource, [string, number]> = {
    instances: ['TROVELESS_MAX_INSTANCES_PER_TENANT', 10],
    ram: ['TROVELESS_MAX_RAM_PER_TENANT', -1],
    volumes: ['TROVELESS_MAX_VOLUMES_PER_TENANT', 40],
    backups: ['TROVELESS_MAX_BACKUPS_PER_TENANT', 50],
  };
  const [name, fallback] = env[resource];
  const raw = process.env[name];
  return raw !== undefined && /^-?\d+$/.test(raw) ? Number(raw) : fallback;
}

export interface QuotaUsage {
  resource: Resource;
  limit: number;
  in_use: number;
}

export async function quotaUsage(projectId: string): Promise<QuotaUsage[]> {
  const out = await documents.send(
    new QueryCommand({
      TableName: config.quotasTable,
      KeyConditionExpression: 'project_id = :p',
      ExpressionAttributeValues: { ':p': projectId },
    }),
  );
  const items = new Map((out.Items ?? []).map((i) => [i.resource as string, i]));
  return RESOURCES.map((resource) => {
    const item = items.get(resource);
    const limit = typeof item?.hard_limit === 'number' ? item.hard_limit : defaultLimit(resource);
    return { resource, limit, in_use: Number(item?.in_use ?? 0) };
  });
}

export type Deltas = Partial<Record<Resource, number>>;
type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * Transaction items that apply `deltas` to the project's usage. Increases carry a condition
 * that keeps in_use within the limit; `exceeded` lists the resources already over before
 * anything is written, so the caller can answer 413 without trying. `resources` names each item,
 * in order: a cancelled transaction names its failed conditions by index.
 */
export async function quotaChanges(
  projectId: string,
  deltas: Deltas,
  /** The project's usage, when its read was started earlier (a create reads it beside the catalog). */
  read: Promise<QuotaUsage[]> = quotaUsage(projectId),
) {
  const usage = await read;
  const exceeded: Resource[] = [];
  const items: TransactItem[] = [];
  const resources: Resource[] = [];
  for (const [resource, delta] of Object.entries(deltas) as [Resource, number][]) {
    if (!delta) continue;
    resources.push(resource);
    const { limit, in_use } = usage.find((u) => u.resource === resource) ?? { limit: -1, in_use: 0 };
    const bounded = delta > 0 && limit >= 0;
    if (bounded && in_use + delta > limit) exceeded.push(resource);
    items.push({
      Update: {
        TableName: config.quotasTable,
        Key: { project_id: projectId, resource },
        UpdateExpression: 'ADD in_use :d',
        ...(bounded
          ? {
              ConditionExpression: 'attribute_not_exists(in_use) OR in_use <= :max',
              ExpressionAttributeValues: { ':d': delta, ':max': limit - delta },
            }
          : { ExpressionAttributeValues: { ':d': delta } }),
      },
    });
  }
  return { items, resources, exceeded };
}

export function quotaExceededMessage(resources: Resource[]): string {
  return `Quota exceeded for resources: [${resources.map((r) => `'${r}'`).join(', ')}].`;
}

/** Admin: sets per-project limits (-1 = unlimited), as `PUT /mgmt/quotas/{project}`. */
export async function setQuotaLimits(
  projectId: string,
  limits: Partial<Record<Resource, number>>,
): Promise<void> {
  for (const [resource, limit] of Object.entries(limits)) {
    await documents.send(
      new UpdateCommand({
        TableName: config.quotasTable,
        Key: { project_id: projectId, resource },
        UpdateExpression: 'SET hard_limit = :l',
        ExpressionAttributeValues: { ':l': limit },
      }),
    );
  }
}

/** Who asks: their own project, and whether they are an admin. */
interface Asker {
  projectId: string;
  isAdmin: boolean;
}

/**
 * `GET /mgmt/quotas/{project}`: admins, or a project asking about itself. Trove's show is not
 * admin_context: another project's quotas are its TroveOperationAuthError, a 403.
 */
export async function showQuotas(asker: Asker, projectId: string) {
  if (!asker.isAdmin && projectId !== asker.projectId) {
    throw new Forbidden(`Operation not allowed for tenant ${asker.projectId}.`);
  }
  const usage = await quotaUsage(projectId);
  return usage.map((u) => ({ resource: u.resource, in_use: u.in_use, reserved: 0, limit: u.limit }));
}

/** `PUT /mgmt/quotas/{project}`: admin only; -1 means unlimited, an unknown resource is 404. */
export async function updateQuotas(asker: Asker, projectId: string, request: UpdateQuotasRequest) {
  if (!asker.isAdmin) throw new Unauthorized('User does not have admin privileges.');
  for (const [resource, limit] of Object.entries(request.quotas)) {
    if (!RESOURCES.includes(resource as Resource))
      throw new NotFound(`Quota resource ${resource} cannot be found.`);
    if (limit < -1) throw new BadRequest(`Quota limit for ${resource} must be -1 or more, got ${limit}.`);
  }
  await setQuotaLimits(projectId, request.quotas as Partial<Record<Resource, number>>);
  return request.quotas;
}
