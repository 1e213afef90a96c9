import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';

// The user directory: Keystone's identity and assignment backends in one DynamoDB table, so that
// no user or password ships with the code. Items, by key:
//   project#<id> / project            a project (kind=project, name, domain_id)
//   user#<id>    / user               a user (kind=user, name, password_hash, lockout counters)
//   user#<id>    / role#<project>#<r> a role assignment of that user on a project
//   revoked#<jti> / token             a revoked token, until it would have expired anyway (TTL)
// The by-name index (kind, name) finds users and projects by name and lists projects.

export interface Domain {
  id: string;
  name: string;
}
export interface Project {
  id: string;
  name: string;
  domain_id: string;
}
export interface User {
  id: string;
  name: string;
  domain_id: string;
  password_hash: string;
  default_project_id?: string;
  /** Keystone's failed_auth_count and failed_auth_at (Unix seconds). */
  failed_auth_count?: number;
  failed_auth_at?: number;
}
export interface RoleAssignment {
  project_id: string;
  role: string;
}

/** Keystone's default domain; Troveless has no other. */
export const DOMAINS: readonly Domain[] = [{ id: 'default', name: 'Default' }];

export function findDomainId(ref: { id?: string; name?: string }): string | undefined {
  return DOMAINS.find((d) => (ref.id ? d.id === ref.id : d.name === ref.name))?.id;
}

export function domainName(id: string): string {
  return DOMAINS.find((d) => d.id === id)?.name ?? id;
}

export const newIdentityId = () => randomBytes(16).toString('hex');

const table = () => config.identityTable;

async function byName(kind: 'user' | 'project', name: string) {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      IndexName: 'by-name',
      KeyConditionExpression: 'kind = :k AND #n = :n',
      ExpressionAttributeNames: { '#n': 'name' },
      ExpressionAttributeValues: { ':k': kind, ':n': name },
    }),
  );
  return out.Items ?? [];
}

export async function getProject(id: string): Promise<Project | undefined> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { pk: `project#${id}`, sk: 'project' } }),
  );
  return out.Item ? projectOf(out.Item) : undefined;
}

export interface ProjectRef {
  id?: string;
  name?: string;
  domainId?: string;
  domainName?: string;
}

export async function findProject(ref: ProjectRef): Promise<Project | undefined> {
  if (ref.id) return getProject(ref.id);
  if (!ref.name) return undefined;
  const domainId = findDomainId({ id: ref.domainId, name: ref.domainName });
  const items = await byName('project', ref.name);
  const item = items.find((p) => p.domain_id === domainId);
  // The index holds keys only for the lookup; read the item itself, consistently.
  return item ? getProject(String(item.id)) : undefined;
}

/** Every project, or those with a given name (Keystone's `GET /v3/projects?name=`). */
export async function listProjects(name?: string): Promise<Project[]> {
  if (name !== undefined) return (await byName('project', name)).map(projectOf);
  const projects: Project[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(
      new QueryCommand({
        TableName: table(),
        IndexName: 'by-name',
        KeyConditionExpression: 'kind = :k',
        ExpressionAttributeValues: { ':k': 'project' },
        ExclusiveStartKey: start,
      }),
    );
    projects.push(...(out.Items ?? []).map(projectOf));
    start = out.LastEvaluatedKey;
  } while (start);
  return projects;
}

export async function getUser(id: string): Promise<User | undefined> {
  const out = await documents.send(
    new GetCommand({ TableName: table(), Key: { pk: `user#${id}`, sk: 'user' }, ConsistentRead: true }),
  );
  return out.Item ? userOf(out.Item) : undefined;
}

export async function findUser(ref: {
  id?: string;
  name?: string;
  domainId?: string;
}): Promise<User | undefined> {
  if (ref.id) return getUser(ref.id);
  if (!ref.name) return undefined;
  const item = (await byName('user', ref.name)).find((u) => u.domain_id === ref.domainId);
  return item ? getUser(String(item.id)) : undefined;
}

export async function rolesOf(userId: string): Promise<RoleAssignment[]> {
  const out = await documents.send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :role)',
      ExpressionAttributeValues: { ':pk': `user#${userId}`, ':role': 'role#' },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []).map((i) => ({ project_id: String(i.project_id), role: String(i.role) }));
}

export async function rolesOn(userId: string, projectId: string): Promise<string[]> {
  return (await rolesOf(userId)).filter((r) => r.project_id === projectId).map((r) => r.role);
}

// The items themselves, shared with the local seed (local/identity-seed.ts).
export const projectItem = (p: Project) => ({ pk: `project#${p.id}`, sk: 'project', kind: 'project', ...p });
export const userItem = (u: User) => ({ pk: `user#${u.id}`, sk: 'user', kind: 'user', ...u });
export const roleItem = (userId: string, projectId: string, role: string) => ({
  pk: `user#${userId}`,
  sk: `role#${projectId}#${role}`,
  project_id: projectId,
  role,
});

/** Writes a project; with `onlyIfNew`, an existing one is left as it is. */
export async function putProject(project: Project, onlyIfNew = false): Promise<void> {
  await put(projectItem(project), onlyIfNew);
}

/** Writes a user; with `onlyIfNew`, an existing one is left as it is. */
export async function putUser(user: User, onlyIfNew = false): Promise<void> {
  await put(userItem(user), onlyIfNew);
}

export async function setPassword(userId: string, passwordHash: string): Promise<void> {
  await documents.send(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: `user#${userId}`, sk: 'user' },
      UpdateExpression: 'SET password_hash = :h REMOVE failed_auth_count, failed_auth_at',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':h': passwordHash },
    }),
  );
}

export async function grantRole(userId: string, projectId: string, role: string): Promise<void> {
  await documents.send(new PutCommand({ TableName: table(), Item: roleItem(userId, projectId, role) }));
}

async function put(item: Record<string, unknown>, onlyIfNew: boolean): Promise<void> {
  try {
    await documents.send(
      new PutCommand({
        TableName: table(),
        Item: item,
        ConditionExpression: onlyIfNew ? 'attribute_not_exists(pk)' : undefined,
      }),
    );
  } catch (err) {
    if (onlyIfNew && (err as Error).name === 'ConditionalCheckFailedException') return;
    throw err;
  }
}

function projectOf(i: Record<string, unknown>): Project {
  return { id: String(i.id), name: String(i.name), domain_id: String(i.domain_id) };
}

function userOf(i: Record<string, unknown>): User {
  return {
    id: String(i.id),
    name: String(i.name),
    domain_id: String(i.domain_id),
    password_hash: String(i.password_hash ?? ''),
    default_project_id: i.default_project_id ? String(i.default_project_id) : undefined,
    failed_auth_count: typeof i.failed_auth_count === 'number' ? i.failed_auth_count : undefined,
    failed_auth_at: typeof i.failed_auth_at === 'number' ? i.failed_auth_at : undefined,
  };
}
