import { ProcessEngine } from './base.ts';
import type {
  DatabaseInfo,
  DatabaseSpec,
  PrepareOptions,
  UserAttributes,
  UserInfo,
  UserSpec,
} from './manager.ts';

/**
 * Trove's databases, users, access and root on one admin session `S` of a SQL engine: what
 * mariadb-accounts.ts and postgresql-accounts.ts each export (their errors: see EngineManager).
 */
export interface SqlAccounts<S> {
  provisionAccounts(
    session: S,
    databases: PrepareOptions['databases'],
    users: PrepareOptions['users'],
    rootPassword: PrepareOptions['rootPassword'],
  ): Promise<void>;
  listDatabases(session: S): Promise<DatabaseInfo[]>;
  createDatabases(session: S, dbs: DatabaseSpec[]): Promise<void>;
  deleteDatabase(session: S, name: string): Promise<void>;
  listUsers(session: S): Promise<UserInfo[]>;
  getUser(session: S, name: string, host: string): Promise<UserInfo | undefined>;
  createUsers(session: S, users: UserSpec[]): Promise<void>;
  deleteUser(session: S, name: string, host: string): Promise<void>;
  updateUser(session: S, name: string, host: string, attrs: UserAttributes): Promise<void>;
  changePasswords(session: S, users: { name: string; host?: string; password: string }[]): Promise<void>;
  listAccess(session: S, name: string, host: string): Promise<{ name: string }[]>;
  grantAccess(session: S, name: string, host: string, databases: string[]): Promise<void>;
  revokeAccess(session: S, name: string, host: string, database: string): Promise<void>;
  enableRoot(session: S, password: string): Promise<void>;
  disableRoot(session: S): Promise<void>;
}

/**
 * A SQL engine (MariaDB, PostgreSQL): each account operation runs on a fresh admin session,
 * closed afterwards. The engine says how it opens that session and which accounts module it uses.
 */
export abstract class SqlEngine<S> extends ProcessEngine {
  protected abstract readonly accounts: SqlAccounts<S>;
  /** Runs `work` on an admin session over the engine's socket, closed afterwards. */
  protected abstract admin<T>(work: (session: S) => Promise<T>): Promise<T>;

  protected provision({ databases, users, rootPassword }: PrepareOptions): Promise<void> {
    return this.admin((s) => this.accounts.provisionAccounts(s, databases, users, rootPassword));
  }

  listDatabases(): Promise<DatabaseInfo[]> {
    return this.admin((s) => this.accounts.listDatabases(s));
  }

  createDatabases(dbs: DatabaseSpec[]): Promise<void> {
    return this.admin((s) => this.accounts.createDatabases(s, dbs));
  }

  deleteDatabase(name: string): Promise<void> {
    return this.admin((s) => this.accounts.deleteDatabase(s, name));
  }

  listUsers(): Promise<UserInfo[]> {
    return this.admin((s) => this.accounts.listUsers(s));
  }

  getUser(name: string, host: string): Promise<UserInfo | undefined> {
    return this.admin((s) => this.accounts.getUser(s, name, host));
  }

  createUsers(users: UserSpec[]): Promise<void> {
    return this.admin((s) => this.accounts.createUsers(s, users));
  }

  deleteUser(name: string, host: string): Promise<void> {
    return this.admin((s) => this.accounts.deleteUser(s, name, host));
  }

  updateUser(name: string, host: string, attrs: UserAttributes): Promise<void> {
    return this.admin((s) => this.accounts.updateUser(s, name, host, attrs));
  }

  changePasswords(users: { name: string; host?: string; password: string }[]): Promise<void> {
    return this.admin((s) => this.accounts.changePasswords(s, users));
  }

  listAccess(name: string, host: string): Promise<{ name: string }[]> {
    return this.admin((s) => this.accounts.listAccess(s, name, host));
  }

  grantAccess(name: string, host: string, databases: string[]): Promise<void> {
    return this.admin((s) => this.accounts.grantAccess(s, name, host, databases));
  }

  revokeAccess(name: string, host: string, database: string): Promise<void> {
    return this.admin((s) => this.accounts.revokeAccess(s, name, host, database));
  }

  enableRoot(password: string): Promise<void> {
    return this.admin((s) => this.accounts.enableRoot(s, password));
  }

  disableRoot(): Promise<void> {
    return this.admin((s) => this.accounts.disableRoot(s));
  }
}
