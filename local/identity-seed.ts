import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { projectItem, roleItem, userItem } from '../lib/identity/directory.ts';
import { type ResolvedService, resourcesOfType } from './service.ts';

// The local stage's users: admin/admin and demo/demo (scrypt hashes only), seeded into the
// identity table at every start. Only the local cloud reads this file; the deployable package
// holds no user (a deployment bootstraps one admin, serverless/identity.yml). Conditional puts:
// a password changed with `npm run identity:user` survives a restart.
export const SEED_FILE = join(import.meta.dirname, 'identity-seed.json');

const Seed = z.object({
  projects: z.array(
    z.object({ id: z.string().regex(/^[0-9a-f]{32}$/), name: z.string(), domain_id: z.string() }),
  ),
  users: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      domain_id: z.string(),
      password_hash: z.string().startsWith('scrypt$'),
      default_project: z.string().optional(),
      roles: z.array(z.object({ project: z.string(), role: z.string() })),
    }),
  ),
});

export function identityTableName(service: ResolvedService): string {
  const [, table] =
    resourcesOfType(service, 'AWS::DynamoDB::Table').find(([id]) => id === 'IdentityTable') ?? [];
  if (!table) throw new Error('serverless.yml declares no IdentityTable');
  return String(table.Properties?.TableName);
}

export async function seedIdentity(ddb: DynamoDBClient, service: ResolvedService): Promise<string[]> {
  const TableName = identityTableName(service);
  const seed = Seed.parse(JSON.parse(await readFile(SEED_FILE, 'utf8')));
  const docs = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
  const putNew = async (Item: Record<string, unknown>) => {
    try {
      await docs.send(new PutCommand({ TableName, Item, ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  };
  for (const p of seed.projects) await putNew(projectItem(p));
  for (const { roles, default_project, ...u } of seed.users) {
    await putNew(userItem({ ...u, default_project_id: default_project }));
    for (const r of roles) await putNew(roleItem(u.id, r.project, r.role));
  }
  return seed.users.map((u) => u.name);
}
