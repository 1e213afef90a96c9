import { randomBytes } from 'node:crypto';
import { unwrapKey } from '../guest/keys.ts';
import { decryptWith, encryptFor } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';

// The replica set's replication account: one user and password on every member, so any member
// can become the source and the others log in to it. The password exists only sealed with each
// member's own guest key (on its item) and inside signed orders: never in the clear at rest.

export interface ReplicationAccount {
  user: string;
  password: string;
}

export const REPLICATION_USER = 'troveless_repl';

export function newAccount(): ReplicationAccount {
  return { user: REPLICATION_USER, password: randomBytes(24).toString('base64url') };
}

/** The member's account, if it has one. */
export async function accountOf(item: InstanceItem): Promise<ReplicationAccount | undefined> {
  if (!item.sealed_replication) return undefined;
  return decryptWith(await unwrapKey(item.wrapped_key), item.sealed_replication) as ReplicationAccount;
}

export function sealAccount(key: Buffer, account: ReplicationAccount): string {
  return encryptFor(key, account);
}
