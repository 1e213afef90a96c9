import { afterEach, describe, expect, it, vi } from 'vitest';
import { documents } from '../../lib/dynamo.ts';
import { bootstrapAdmin } from '../../lib/identity/bootstrap.ts';
import { findUser, rolesOn } from '../../lib/identity/directory.ts';
import { verifyPassword } from '../../lib/identity/passwords.ts';

/** The identity table in memory: Put (with attribute_not_exists), Get, and by-name / pk queries. */
function fakeIdentityTable() {
  const items = new Map<string, Record<string, unknown>>();
  const key = (i: Record<string, unknown>) => `${i.pk}|${i.sk}`;
  vi.spyOn(documents, 'send').mockImplementation((async (command: {
    constructor: { name: string };
    input: unknown;
  }) => {
    const input = command.input as {
      Item?: Record<string, unknown>;
      Key?: Record<string, unknown>;
      ConditionExpression?: string;
      IndexName?: string;
      ExpressionAttributeValues?: Record<string, string>;
    };
    switch (command.constructor.name) {
      case 'PutCommand': {
        const item = input.Item ?? {};
        if (input.ConditionExpression && items.has(key(item)))
          throw Object.assign(new Error('exists'), { name: 'ConditionalCheckFailedException' });
        items.set(key(item), item);
        return {};
      }
      case 'GetCommand':
        return { Item: items.get(key(input.Key ?? {})) };
      case 'QueryCommand': {
        const v = input.ExpressionAttributeValues ?? {};
        const all = [...items.values()];
        const found = input.IndexName
          ? all.filter((i) => i.kind === v[':k'] && (v[':n'] === undefined || i.name === v[':n']))
          : all.filter((i) => i.pk === v[':pk'] && String(i.sk).startsWith(v[':role'] ?? ''));
        return { Items: found };
      }
      default:
        throw new Error(`unexpected ${command.constructor.name}`);
    }
  }) as never);
  return items;
}

describe('a deployment’s first admin', () => {
  afterEach(() => vi.restoreAllMocks());

  it('gets a random password that goes to the secret store only, as a hash to the table', async () => {
    const items = fakeIdentityTable();
    const secrets: string[] = [];
    const out = await bootstrapAdmin(async (password) => {
      secrets.push(password);
    });
    expect(out.created).toBe(true);
    expect(secrets).toHaveLength(1);
    const password = secrets[0] ?? '';
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(password).not.toBe('admin');
    expect(JSON.stringify([...items.values()])).not.toContain(password);
    const admin = await findUser({ name: 'admin', domainId: 'default' });
    expect(await verifyPassword(password, admin?.password_hash ?? '')).toBe(true);
    expect(await rolesOn(admin?.id ?? '', admin?.default_project_id ?? '')).toEqual(['admin']);
  });

  it('never touches an existing admin, nor writes a new secret for it', async () => {
    fakeIdentityTable();
    const first: string[] = [];
    await bootstrapAdmin(async (p) => {
      first.push(p);
    });
    const again: string[] = [];
    const out = await bootstrapAdmin(async (p) => {
      again.push(p);
    });
    expect(out.created).toBe(false);
    expect(again).toEqual([]);
    const admin = await findUser({ name: 'admin', domainId: 'default' });
    expect(await verifyPassword(first[0] ?? '', admin?.password_hash ?? '')).toBe(true);
  });

  it('writes no user when the secret cannot be stored', async () => {
    const items = fakeIdentityTable();
    await expect(
      bootstrapAdmin(async () => {
        throw new Error('AccessDenied');
      }),
    ).rejects.toThrow(/AccessDenied/);
    expect([...items.values()].filter((i) => i.kind === 'user')).toEqual([]);
  });
});
