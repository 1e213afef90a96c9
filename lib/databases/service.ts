import { randomBytes } from 'node:crypto';
import { config } from '../config.ts';
import { BadRequest, NotFound } from '../errors.ts';
import { callGuest } from '../guest/calls.ts';
import type { Page } from '../http/pagination.ts';
import type { InstanceItem } from '../instances/model.ts';
import { updateInstance } from '../instances/repository.ts';
import { isReservedDatabase, isReservedUser } from './names.ts';

// Trove's database, user, access and root operations, each a call to the instance's guest.
// Trove casts the writes and returns at once; Troveless waits for the guest's answer, so a 202
// means the change is made and an error (say, the user already exists) reaches the caller.

const low = () => ({ timeoutSeconds: config.callLowTimeoutSeconds });
const high = () => ({ timeoutSeconds: config.callHighTimeoutSeconds });

export interface DatabaseInfo {
  name: string;
  character_set?: string;
  collate?: string;
}
export interface UserInfo {
  name: string;
  host: string;
  databases: { name: string }[];
}

/** A page of a guest-side list, by name as Trove pages them (the marker is the last name seen). */
export function pageByName<T>(items: T[], key: (t: T) => string, page: Page) {
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const after = page.marker ? sorted.filter((t) => key(t) > (page.marker as string)) : sorted;
  const slice = after.slice(0, page.limit);
  const last = slice[slice.length - 1];
  return { items: slice, nextMarker: after.length > page.limit && last ? key(last) : undefined };
}

export async function listDatabases(item: InstanceItem): Promise<DatabaseInfo[]> {
  const all = (await callGuest(item, 'list_databases', {}, low())) as DatabaseInfo[];
  return all.filter((d) => !isReservedDatabase(item.datastore.manager, d.name));
}

export async function createDatabases(item: InstanceItem, databases: DatabaseInfo[]): Promise<void> {
  await callGuest(item, 'create_database', { databases }, high());
}

export async function deleteDatabase(item: InstanceItem, name: string): Promise<void> {
  await callGuest(item, 'delete_database', { database: name }, high());
}

export async function listUsers(item: InstanceItem): Promise<UserInfo[]> {
  const all = (await callGuest(item, 'list_users', {}, high())) as UserInfo[];
  return all.filter((u) => !isReservedUser(item.datastore.manager, u.name));
}

export async function getUser(item: InstanceItem, name: string, host: string): Promise<UserInfo> {
  const user = (await callGuest(
    item,
    'get_user',
    { username: name, hostname: host },
    low(),
  )) as UserInfo | null;
  if (!user) throw new NotFound(`User ${name}@${host} cannot be found on the instance.`);
  return user;
}

export async function createUsers(
  item: InstanceItem,
  users: { name: string; password: string; host: string; databases: { name: string }[] }[],
): Promise<void> {
  await callGuest(item, 'create_user', {}, { ...high(), secret: { users } });
}

export async function deleteUser(item: InstanceItem, name: string, host: string): Promise<void> {
  await callGuest(item, 'delete_user', { username: name, hostname: host }, high());
}

export async function updateUser(
  item: InstanceItem,
  name: string,
  host: string,
  attrs: { name?: string; password?: string; host?: string },
): Promise<void> {
  const { password, ...visible } = attrs;
  await callGuest(
    item,
    'update_attributes',
    { username: name, hostname: host },
    { ...high(), secret: { user_attrs: { ...visible, ...(password ? { password } : {}) } } },
  );
}

export async function changePasswords(
  item: InstanceItem,
  users: { name: string; host: string; password: string }[],
): Promise<void> {
  await callGuest(item, 'change_passwords', {}, { ...high(), secret: { users } });
}

export async function listAccess(
  item: InstanceItem,
  name: string,
  host: string,
): Promise<{ name: string }[]> {
  return (await callGuest(item, 'list_access', { username: name, hostname: host }, low())) as {
    name: string;
  }[];
}

export async function grantAccess(item: InstanceItem, name: string, host: string, databases: string[]) {
  await callGuest(item, 'grant_access', { username: name, hostname: host, databases }, low());
}

export async function revokeAccess(item: InstanceItem, name: string, host: string, database: string) {
  await callGuest(item, 'revoke_access', { username: name, hostname: host, database }, low());
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
  if (password !== undefined && (typeof password !== 'string' || password.length === 0)) {
    throw new BadRequest('The root password is not valid.');
  }
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
