import { LRUCache } from 'lru-cache';

// Tokens whose signature was verified, so that a client's every request does not verify the same
// HMAC again (WebCrypto's key import and verify: ~0.2 ms of CPU per request, measured in
// `npm run bench -- api`). What a token says cannot change, so an entry is only as good as the two
// things that can: the clock (an entry is used only while its token is unexpired, counted as jose
// counts it) and the signing key (an entry holds the key it was verified with; a rotated key
// misses). Revocation is asked apart, every time (tokens.ts, checkToken). Bounded: the least
// recently used token goes first. Failures are never kept, so made-up tokens cost a verification
// each, as before, and evict at most as fast as they are verified.

export class VerifiedTokens<T extends { exp: number }> {
  readonly #entries: LRUCache<string, { verified: T; key: object }>;

  constructor(max: number) {
    this.#entries = new LRUCache({ max });
  }

  /** The token's verification, if it was verified with `key` and is unexpired at `now` (ms). */
  get(token: string, key: object, now: number): T | undefined {
    const entry = this.#entries.get(token);
    if (!entry) return undefined;
    // jose's own test: a token has expired once exp <= now, in whole seconds.
    if (entry.key === key && Math.floor(now / 1000) < entry.verified.exp) return entry.verified;
    this.#entries.delete(token);
    return undefined;
  }

  set(token: string, key: object, verified: T): void {
    this.#entries.set(token, { verified, key });
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}
