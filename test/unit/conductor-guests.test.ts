import { describe, expect, it } from 'vitest';
import { GuestCache, type GuestSource } from '../../lib/conductor/guests.ts';
import type { InstanceItem } from '../../lib/instances/model.ts';

// The conductor's cache of guest keys: bounded, short-lived, and never holding a key past a
// rotation that a write or read has shown it.

function item(id: string, wrapped: string, status = 'healthy'): InstanceItem {
  return {
    project_id: `project-of-${id}`,
    id,
    wrapped_key: wrapped,
    service_status: status,
    volume_used_bytes: 10,
    volume_total_bytes: 100,
  } as InstanceItem;
}

/** A table of instances the test changes, counting its reads and unwraps. */
function source() {
  const stored = new Map<string, InstanceItem>();
  const counts = { loads: 0, unwraps: 0 };
  const src: GuestSource = {
    load: async (id) => {
      counts.loads++;
      return stored.get(id);
    },
    // The "key" is the wrapped text itself, so a test can tell which one the cache holds.
    unwrap: async (wrapped) => {
      counts.unwraps++;
      return Buffer.from(`key:${wrapped}`);
    },
  };
  return { stored, counts, src };
}

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('guest cache', () => {
  it('reads a guest once, then answers from memory until its TTL runs out', async () => {
    const { stored, counts, src } = source();
    const c = clock();
    const cache = new GuestCache(src, { max: 10, ttlMs: 60_000, reloadAfterMs: 5_000, now: c.now });
    stored.set('a', item('a', 'w1'));

    const first = await cache.get('a');
    expect(first?.projectId).toBe('project-of-a');
    expect(first?.key.toString()).toBe('key:w1');
    expect(first?.known).toEqual({
      service_status: 'healthy',
      volume_used_bytes: 10,
      volume_total_bytes: 100,
    });
    await cache.get('a');
    c.advance(59_000);
    await cache.get('a');
    expect(counts).toEqual({ loads: 1, unwraps: 1 });

    // Past the TTL it is read again, and a key rotated meanwhile is the one it now holds.
    stored.set('a', item('a', 'w2'));
    c.advance(2_000);
    expect((await cache.get('a'))?.key.toString()).toBe('key:w2');
    expect(counts.loads).toBe(2);
  });

  it('holds at most `max` guests, dropping the least recently used', async () => {
    const { stored, counts, src } = source();
    const cache = new GuestCache(src, { max: 3, ttlMs: 60_000, reloadAfterMs: 5_000 });
    for (const id of ['a', 'b', 'c', 'd']) stored.set(id, item(id, `w-${id}`));
    await cache.get('a');
    await cache.get('b');
    await cache.get('c');
    await cache.get('a'); // a is now the most recently used
    await cache.get('d'); // b goes
    expect(cache.size).toBe(3);
    expect(counts.loads).toBe(4);
    await cache.get('a');
    await cache.get('c');
    await cache.get('d');
    expect(counts.loads).toBe(4);
    await cache.get('b');
    expect(counts.loads).toBe(5);
    expect(cache.size).toBe(3);
  });

  it('shares one read among concurrent misses for the same guest, and caches no absent one', async () => {
    const { stored, counts, src } = source();
    const cache = new GuestCache(src, { max: 10, ttlMs: 60_000, reloadAfterMs: 5_000 });
    stored.set('a', item('a', 'w1'));
    const all = await Promise.all(Array.from({ length: 10 }, () => cache.get('a')));
    expect(new Set(all.map((g) => g?.key.toString()))).toEqual(new Set(['key:w1']));
    expect(counts.loads).toBe(1);

    expect(await cache.get('gone')).toBeUndefined();
    expect(await cache.get('gone')).toBeUndefined();
    expect(counts.loads).toBe(3);
    expect(cache.size).toBe(1);
  });

  it('adopts the key a stored item shows after a rotation, and keeps an unchanged one without unwrapping', async () => {
    const { stored, counts, src } = source();
    const cache = new GuestCache(src, { max: 10, ttlMs: 60_000, reloadAfterMs: 5_000 });
    stored.set('a', item('a', 'w1'));
    const before = await cache.get('a');

    // The same key, another status: the entry stays, with what is stored now.
    const same = await cache.adopt(item('a', 'w1', 'shutdown'));
    expect(same).toBe(before);
    expect(same.known?.service_status).toBe('shutdown');
    expect(counts.unwraps).toBe(1);

    // Rotated: the stored key replaces the cached one, for this and every later message.
    const rotated = await cache.adopt(item('a', 'w2'));
    expect(rotated.key.toString()).toBe('key:w2');
    expect(rotated.wrappedKey).toBe('w2');
    expect((await cache.get('a'))?.key.toString()).toBe('key:w2');
    expect(counts).toEqual({ loads: 1, unwraps: 2 });
  });

  it('reads a guest again after a failed signature only when its entry is old enough', async () => {
    const { stored, counts, src } = source();
    const c = clock();
    const cache = new GuestCache(src, { max: 10, ttlMs: 60_000, reloadAfterMs: 5_000, now: c.now });
    stored.set('a', item('a', 'w1'));
    const cached = await cache.get('a');
    if (!cached) throw new Error('not cached');
    stored.set('a', item('a', 'w2'));

    // Forged messages right after a read cost nothing more.
    expect(await cache.reload(cached)).toBeUndefined();
    expect(counts.loads).toBe(1);

    c.advance(5_000);
    const fresh = await cache.reload(cached);
    expect(fresh?.key.toString()).toBe('key:w2');
    expect(counts.loads).toBe(2);
    // ... and not again at once.
    expect(await cache.reload(fresh ?? cached)).toBeUndefined();

    // A guest deleted meanwhile leaves the cache.
    stored.delete('a');
    c.advance(5_000);
    expect(await cache.reload(fresh ?? cached)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
