import { randomBytes } from 'node:crypto';
import { config } from '../config.ts';
import { BadRequest, NotFound } from '../errors.ts';
import { callGuest } from '../guest/calls.ts';
import type { InstanceItem } from '../instances/model.ts';
import { updateInstance } from '../instances/repository.ts';
import { type Page, type PageOf, pageByKey } from '../paging.ts';
import { validate } from '../validation.ts';
import { checkDatabaseName, parseUserRef } from './accounts.ts';
import { accountRulesFor, hostOrAny, isReserved, type Problem, passwordProblem } from './rules/index.ts';
import {
  type ChangePasswordsRequest,
  type CreateDatabasesRequest,
  type CreateUsersRequest,
  type DatabaseInfo,
  type GrantAccessRequest,
  requestsFor,
  type UpdateUserRequest,
  type UserInfo,
} from './schemas.ts';

// Trove's database, user, access and root operations, each a call to the instance's guest.
// Trove casts the writes and returns at once; Troveless waits for the guest's answer, so a 202
// means the change is made and an error (say, the user already exists) reaches the caller.

const low = () => ({ timeoutSeconds: config.callLowTimeoutSeconds });
const high = () => ({ timeoutSeconds: config.callHighTimeoutSeconds });

export type { DatabaseInfo, UserInfo } from './schemas.ts';

/** The requests again, with the rules of the instance's engine (its guest applies the same). */
const engine = (item: InstanceItem) => requestsFor(item.datastore.manager);

function refuseIf(problem: Problem): void {
  if (problem) throw new BadRequest(problem);
}

const databaseNamed = (item: InstanceItem, name: string) => checkDatabaseName(item.datastore.manager, name);
const userNamed = (item: InstanceItem, ref: string) => parseUserRef(item.datastore.manager, ref);

/** Paged by name as Trove pages them (the marker is the last name seen). */
export async function listDatabases(item: InstanceItem, page: Page): Promise<PageOf<DatabaseInfo>> {
  const rules = accountRulesFor(item.datastore.manager);
  const all = (await callGuest(item, 'list_databases', {}, low())) as DatabaseInfo[];
  return pageByKey(
    all.filter((d) => !isReserved(d.name, rules.database)),
    (d) => d.name,
    page,
  );
}

/** Several at once: every name is checked before any is made. */
export async function createDatabases(item: InstanceItem, request: CreateDatabasesRequest): Promise<void> {
  const { databases } = validate(engine(item).CreateDatabasesRequest, request);
  await callGuest(item, 'create_database', { databases }, high());
}

export async function deleteDatabase(item: InstanceItem, name: string): Promise<void> {
  await callGuest(item, 'delete_database', { database: databaseNamed(item, name) }, high());
}

/** Paged by `name@host`. */
export async function listUsers(item: InstanceItem, page: Page): Promise<PageOf<UserInfo>> {
  const rules = accountRulesFor(item.datastore.manager);
  const all = (await callGuest(item, 'list_users', {}, high())) as UserInfo[];
  return pageByKey(
    all.filter((u) => !isReserved(u.name, rules.user)),
    (u) => `${u.name}@${u.host}`,
    page,
  );
}

/** `ref` is `name` or `name@host`, as the URL gives it. */
export async function getUser(item: InstanceItem, ref: string): Promise<UserInfo> {
  const { name, host } = userNamed(item, ref);
  const user = (await callGuest(
    item,
    'get_user',
    { username: name, hostname: host },
    low(),
  )) as UserInfo | null;
  if (!user) throw new NotFound(`User ${name}@${host} cannot be found on the instance.`);
  return user;
}

export async function createUsers(item: InstanceItem, request: CreateUsersRequest): Promise<void> {
  const users = validate(engine(item).CreateUsersRequest, request).users.map((u) => ({
    name: u.name,
    password: u.password,
    host: hostOrAny(u.host),
    databases: u.databases ?? [],
  }));
  await callGuest(item, 'create_user', {}, { ...high(), secret: { users } });
}

export async function deleteUser(item: InstanceItem, ref: string): Promise<void> {
  const { name, host } = userNamed(item, ref);
  await callGuest(item, 'delete_user', { username: name, hostname: host }, high());
}

export async function updateUser(item: InstanceItem, ref: string, request: UpdateUserRequest): Promise<void> {
  const { name, host } = userNamed(item, ref);
  const { password, ...visible } = validate(engine(item).UpdateUserRequest, request).user;
  await callGuest(
    item,
    'update_attributes',
    { username: name, hostname: host },
    { ...high(), secret: { user_attrs: { ...visible, ...(password ? { password } : {}) } } },
  );
}

/** New passwords for several users at once. */
export async function changePasswords(item: InstanceItem, request: ChangePasswordsRequest): Promise<void> {
  const users = validate(engine(item).ChangePasswordsRequest, request).users.map((u) => ({
    name: u.name,
    host: hostOrAny(u.host),
    password: u.password,
  }));
  await callGuest(item, 'change_passwords', {}, { ...high(), secret: { users } });
}

export async function listAccess(item: InstanceItem, ref: string): Promise<{ name: string }[]> {
  const { name, host } = userNamed(item, ref);
  return (await callGuest(item, 'list_access', { username: name, hostname: host }, low())) as {
    name: string;
  }[];
}

export async function grantAccess(item: InstanceItem, ref: string, request: GrantAccessRequest) {
  const { name, host } = userNamed(item, ref);
  const databases = validate(engine(item).GrantAccessRequest, request).databases.map((d) => d.name);
  await callGuest(item, 'grant_access', { username: name, hostname: host, databases }, low());
}

export async function revokeAccess(item: InstanceItem, ref: string, database: string) {
  const { name, host } = userNamed(item, ref);
  await callGuest(
    item,
    'revoke_access',
    { username: name, hostname: host, database: databaseNamed(item, database) },
    low(),
  );
}

/** Trove's RootHistory: enabled when recorded and not disabled since. */
export function rootEnabled(item: InstanceItem): boolean {
  if (!item.root_enabled_at) return false;
  return !item.root_disabled_at || item.root_disabled_at < item.root_enabled_at;
}

/** Trove's root user name per datastore. */
export function rootUserName(item: InstanceItem): string {
  return item.datastore.manager === 'postgresql' ? 'postgres' : 'root';
}

export async function enableRoot(item: InstanceItem, userId: string, password?: string): Promise<string> {
  if (password !== undefined) refuseIf(passwordProblem(password));
  // Trove's default_password_length; base64url keeps it typeable and free of quotes.
  const secret = password ?? randomBytes(27).toString('base64url');
  await callGuest(item, 'enable_root', {}, { ...high(), secret: { root_password: secret } });
  await updateInstance(item.project_id, item.id, {
    set: { root_enabled_at: new Date().toISOString(), root_enabled_by: userId },
  });
  return secret;
}

export async function disableRoot(item: InstanceItem): Promise<void> {
  if (!rootEnabled(item)) throw new NotFound(`Root user has never been enabled on instance ${item.id}.`);
  await callGuest(item, 'disable_root', {}, low());
  await updateInstance(item.project_id, item.id, { set: { root_disabled_at: new Date().toISOString() } });
}
