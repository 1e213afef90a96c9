import type { DatabaseSpec, EngineManager, UserSpec } from './engines/manager.ts';

// Trove's guest RPC methods for databases, users, access and root (TROVE_API.md §10), mapped onto
// the engine manager. Arguments come from a signed order; passwords were decrypted by the caller.

const text = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw Object.assign(new Error(`${what} is missing`), { name: 'BadRequest' });
  return v;
};
const host = (v: unknown): string => (typeof v === 'string' && v ? v : '%');

export async function runDataOperation(
  engine: EngineManager,
  method: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  switch (method) {
    case 'list_databases':
      return engine.listDatabases();
    case 'create_database':
      return engine.createDatabases(args.databases as DatabaseSpec[]);
    case 'delete_database':
      return engine.deleteDatabase(text(args.database, 'database'));
    case 'list_users':
      return engine.listUsers();
    case 'get_user':
      return (await engine.getUser(text(args.username, 'username'), host(args.hostname))) ?? null;
    case 'create_user':
      return engine.createUsers(args.users as UserSpec[]);
    case 'delete_user':
      return engine.deleteUser(text(args.username, 'username'), host(args.hostname));
    case 'update_attributes':
      return engine.updateUser(
        text(args.username, 'username'),
        host(args.hostname),
        args.user_attrs as { name?: string; password?: string; host?: string },
      );
    case 'change_passwords':
      return engine.changePasswords(args.users as { name: string; host?: string; password: string }[]);
    case 'list_access':
      return engine.listAccess(text(args.username, 'username'), host(args.hostname));
    case 'grant_access':
      return engine.grantAccess(
        text(args.username, 'username'),
        host(args.hostname),
        args.databases as string[],
      );
    case 'revoke_access':
      return engine.revokeAccess(
        text(args.username, 'username'),
        host(args.hostname),
        text(args.database, 'database'),
      );
    case 'enable_root':
      return engine.enableRoot(text(args.root_password, 'root_password'));
    case 'disable_root':
      return engine.disableRoot();
    case 'apply_overrides':
      return engine.applyOverrides(
        args.values as Record<string, string | number | boolean>,
        args.rules as { name: string; restart_required: boolean }[],
      );
    case 'remove_overrides':
      return engine.removeOverrides(args.rules as { name: string; restart_required: boolean }[]);
    case 'get_effective_defaults':
      return engine.effectiveDefaults(args.names as string[]);
    default:
      throw Object.assign(new Error(`Operation ${method} is not supported by this guest.`), {
        name: 'NotImplemented',
      });
  }
}
