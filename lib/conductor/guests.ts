import { LRUCache } from 'lru-cache';
import { unwrapKey } from '../guest/keys.ts';
import { type SignedEnvelope, verifySignature } from '../guest/signing.ts';
import type { InstanceItem } from '../instances/model.ts';
import { findInstance } from '../instances/repository.ts';

// What the conductor needs to verify a guest (its project and key), kept between invocations of
// a warm function so that a heartbeat costs one table write instead of a query, a read and a
// write. Bounded (least recently used goes first) and short-lived (TTL), and never trusted past a
// rotation: every write the conductor makes with a cached key is conditioned on the stored
// wrapped key being the one it verified with (lib/conductor/heartbeats.ts), and a write that
// finds another key adopts it from the item DynamoDB returns and verifies again.

/** What was last seen stored for a guest: a heartbeat that changes none of it writes only its time. */
export interface KnownState {
  service_status: string;
  volume_used_bytes?: number;
  volume_total_bytes?: number;
}

export interface Guest {
  instanceId: string;
  projectId: string;
  /** The stored wrapped key `key` was unwrapped from: the witness of a rotation. */
  wrappedKey: string;
  key: Buffer;
  /** When this entry was loaded from the table (ms, the cache's clock). */
  loadedAt: number;
  known?: KnownState;
}

export interface GuestSource {
  /** The stored instance, or undefined when there is none. */
  load(instanceId: string): Promise<InstanceItem | undefined>;
  unwrap(wrapped: string): Promise<Buffer>;
}

export interface GuestCacheOptions {
  /** Entries kept at most: the least recently used goes first. */
  max: number;
  /** An entry is loaded again after this long, whatever happened meanwhile. */
  ttlMs: number;
  /**
   * A message that does not verify with a cached key makes the cache read the key again (it may
   * have been rotated), but not more often than this per guest: forged messages cannot turn into
   * a table read each.
   */
  reloadAfterMs: number;
  now?: () => number;
}

export const knownStateOf = (item: InstanceItem): KnownState => ({
  service_status: item.service_status,
  volume_used_bytes: item.volume_used_bytes,
  volume_total_bytes: item.volume_total_bytes,
});

export class GuestCache {
  readonly #entries: LRUCache<string, Guest>;
  readonly #source: GuestSource;
  readonly #options: GuestCacheOptions;
  readonly #now: () => number;

  constructor(source: GuestSource, options: GuestCacheOptions) {
    this.#source = source;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#entries = new LRUCache<string, Guest>({
      max: options.max,
      ttl: options.ttlMs,
      perf: { now: this.#now },
      // Ask the clock every time rather than reuse a reading for a while: the TTL is the bound.
      ttlResolution: 0,
      // Concurrent misses for one guest (a batch holds several of its reports) share one load.
      fetchMethod: async (instanceId) => {
        const item = await this.#source.load(instanceId);
        return item ? this.#entryOf(item) : undefined;
      },
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The guest, from the cache when it holds a live entry, else from the table. */
  async get(instanceId: string): Promise<Guest | undefined> {
    return this.#entries.fetch(instanceId);
  }

  /**
   * After a message failed to verify with `guest.key`: the guest as stored now, when the entry is
   * old enough to be read again; undefined otherwise (or when the instance is gone).
   */
  async reload(guest: Guest): Promise<Guest | undefined> {
    if (this.#now() - guest.loadedAt < this.#options.reloadAfterMs) return undefined;
    const fresh = await this.#entries.fetch(guest.instanceId, { forceRefresh: true });
    if (!fresh) this.#entries.delete(guest.instanceId);
    return fresh;
  }

  /**
   * The guest as a stored item says it is (an item a write or read returned): the cached key is
   * kept when the wrapped key is the same, otherwise the stored one replaces it.
   */
  async adopt(item: InstanceItem): Promise<Guest> {
    const cached = this.#entries.get(item.id);
    if (cached && cached.wrappedKey === item.wrapped_key && cached.projectId === item.project_id) {
      cached.known = knownStateOf(item);
      return cached;
    }
    const entry = await this.#entryOf(item);
    this.#entries.set(item.id, entry);
    return entry;
  }

  /**
   * The guest whose key signed `envelope`: verified with its cached key or, when that fails (it
   * may have been rotated since it was cached), with the stored one, read again at most every
   * reloadAfterMs. 'unknown' when there is no such instance, 'forged' when neither key verifies.
   */
  async signer(envelope: SignedEnvelope): Promise<Guest | 'unknown' | 'forged'> {
    const guest = await this.get(envelope.instance_id);
    if (!guest) return 'unknown';
    if (verifySignature(guest.key, envelope)) return guest;
    const fresh = await this.reload(guest);
    return fresh && verifySignature(fresh.key, envelope) ? fresh : 'forged';
  }

  forget(instanceId: string): void {
    this.#entries.delete(instanceId);
  }

  async #entryOf(item: InstanceItem): Promise<Guest> {
    return {
      instanceId: item.id,
      projectId: item.project_id,
      wrappedKey: item.wrapped_key,
      key: await this.#source.unwrap(item.wrapped_key),
      loadedAt: this.#now(),
      known: knownStateOf(item),
    };
  }
}

/**
 * The conductor's own cache. 20,000 entries of ~0.5 KB each stay well within a 256 MB function;
 * an hour bounds how long a cached key lives even if no write ever disagreed with it (the writes,
 * not the TTL, keep it honest; each refresh is a KMS Decrypt: docs/cost.md).
 */
export const guests = new GuestCache(
  { load: findInstance, unwrap: unwrapKey },
  { max: 20_000, ttlMs: 60 * 60_000, reloadAfterMs: 5_000 },
);
