import { afterEach, describe, expect, it, vi } from 'vitest';
import { documents } from '../../lib/dynamo.ts';
import { recordOrder, replyMatchesOrder, tokenHash } from '../../lib/guest/orders.ts';

/** The operations table as orders use it: Update merges the token hashes, Get reads an order. */
function fakeOperations() {
  const items = new Map<string, Record<string, unknown>>();
  vi.spyOn(documents, 'send').mockImplementation((async (command: {
    constructor: { name: string };
    input: unknown;
  }) => {
    const input = command.input as {
      Key: { id: string };
      ExpressionAttributeValues?: Record<string, unknown>;
    };
    const id = input.Key.id;
    if (command.constructor.name === 'UpdateCommand') {
      const v = input.ExpressionAttributeValues ?? {};
      const old = items.get(id);
      if (old && old.instance_id !== v[':i'])
        throw Object.assign(new Error('conditional'), { name: 'ConditionalCheckFailedException' });
      const hashes = new Set([
        ...((old?.token_hashes as Set<string>) ?? []),
        ...((v[':h'] as Set<string>) ?? []),
      ]);
      items.set(id, {
        id,
        instance_id: v[':i'],
        method: v[':m'],
        ...(hashes.size ? { token_hashes: hashes } : {}),
      });
      return {};
    }
    return { Item: items.get(id) };
  }) as never);
  return items;
}

describe('guest orders: a reply counts only from the instance the order went to', () => {
  afterEach(() => vi.restoreAllMocks());

  it('stores the token only as a hash', async () => {
    const items = fakeOperations();
    await recordOrder('inst-a', 'op-a', 'prepare', 'token-of-a');
    expect(
      JSON.stringify(
        [...items.values()].map((i) => ({ ...i, token_hashes: [...(i.token_hashes as Set<string>)] })),
      ),
    ).not.toContain('token-of-a');
    expect(items.get('order#op-a')?.token_hashes).toEqual(new Set([tokenHash('token-of-a')]));
  });

  it('accepts the reply of the instance the order went to, with its token', async () => {
    fakeOperations();
    await recordOrder('inst-a', 'op-a', 'prepare', 'token-of-a');
    expect(await replyMatchesOrder('inst-a', 'op-a', 'token-of-a')).toBe(true);
  });

  it('refuses another instance replying with the token it learned, under either operation id', async () => {
    fakeOperations();
    await recordOrder('inst-a', 'op-a', 'prepare', 'token-of-a');
    await recordOrder('inst-b', 'op-b', 'prepare', 'token-of-b');
    // B signs a reply for A's operation with A's token: the order went to A.
    expect(await replyMatchesOrder('inst-b', 'op-a', 'token-of-a')).toBe(false);
    // B answers its own operation but carries A's token: the hash does not match.
    expect(await replyMatchesOrder('inst-b', 'op-b', 'token-of-a')).toBe(false);
    // An operation nobody ordered.
    expect(await replyMatchesOrder('inst-b', 'op-x', 'token-of-a')).toBe(false);
  });

  it('keeps every token a retried step sent the same operation with', async () => {
    fakeOperations();
    await recordOrder('inst-a', 'op-a', 'prepare', 'first-token');
    await recordOrder('inst-a', 'op-a', 'prepare', 'retry-token');
    expect(await replyMatchesOrder('inst-a', 'op-a', 'first-token')).toBe(true);
    expect(await replyMatchesOrder('inst-a', 'op-a', 'retry-token')).toBe(true);
    await expect(recordOrder('inst-b', 'op-a', 'prepare', 'x')).rejects.toThrow(/conditional/);
  });

  it('matches a synchronous call only without a token', async () => {
    fakeOperations();
    await recordOrder('inst-a', 'op-sync', 'list_databases');
    expect(await replyMatchesOrder('inst-a', 'op-sync')).toBe(true);
    expect(await replyMatchesOrder('inst-b', 'op-sync')).toBe(false);
    expect(await replyMatchesOrder('inst-a', 'op-sync', 'some-token')).toBe(false);
  });
});
