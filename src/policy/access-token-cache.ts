// A replica's memory of recent access-token lookups over the shared token table: hits and misses are kept for at
// most `ttlMs`, so a revocation on any replica takes effect everywhere within that bound; a lookup in flight is kept
// until it settles. Both that bound and the hourly sweep of long-expired rows go by the monotonic clock: a wall clock
// stepped back an hour (NTP, a VM resumed) kept a revoked token working on the replica for the hour. Token expiry, an
// instant, is the wall clock's, checked by the policy.
import type { AccessTokenGrant, AccessTokenSource, IssuedAccessToken } from './access-token-source.js';

/** The table underneath (the store's AccessTokens fits). */
export interface AccessTokenBackend {
  insert(token: IssuedAccessToken): Promise<void>;
  find(tokenHash: string): Promise<AccessTokenGrant | undefined>;
  /** Removes the tokens that expired more than `keepMs` ago (by the table's clock); returns how many. */
  deleteLongExpired?(keepMs: number): Promise<number>;
}

export interface AccessTokenCacheOptions {
  /** How long a lookup is trusted: the revocation delay. Default 1 s. */
  ttlMs?: number;
  /** Entries kept; the oldest go first. Default 10 000. */
  maxEntries?: number;
  /** How long expired tokens stay in the table, so clients hear "expired" rather than "invalid". Default 1 day. */
  keepExpiredMs?: number;
  /** Monotonic milliseconds (default performance.now()). */
  now?: () => number;
}

interface Entry {
  /** null: no such token (a miss is safe to cache: a random token cannot be presented before it is issued). */
  grant: Promise<AccessTokenGrant | undefined> | AccessTokenGrant | null;
  /** Infinity while the lookup is in flight. */
  until: number;
}

const CLEANUP_EVERY_MS = 3_600_000;

export class CachedAccessTokens implements AccessTokenSource {
  readonly #backend: AccessTokenBackend;
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #keepExpiredMs: number;
  readonly #now: () => number;
  #nextCleanup = 0;

  constructor(backend: AccessTokenBackend, opts: AccessTokenCacheOptions = {}) {
    this.#backend = backend;
    this.#ttlMs = opts.ttlMs ?? 1000;
    this.#maxEntries = opts.maxEntries ?? 10_000;
    this.#keepExpiredMs = opts.keepExpiredMs ?? 86_400_000;
    this.#now = opts.now ?? (() => performance.now());
  }

  async save(token: IssuedAccessToken): Promise<void> {
    await this.#backend.insert(token);
    this.#put(token.tokenHash, { keyHash: token.keyHash, scopes: token.scopes, expiresAt: token.expiresAt });
    this.#cleanup();
  }

  find(tokenHash: string): AccessTokenGrant | undefined | Promise<AccessTokenGrant | undefined> {
    const now = this.#now();
    const hit = this.#entries.get(tokenHash);
    if (hit && hit.until > now) return hit.grant ?? undefined;
    // One lookup per token at a time, however slow: a burst of requests with the same token shares it. Held for one
    // TTL only, a table slower than that was sent one more query per hot token every TTL, and they filled the pool.
    // Settling touches only its own entry: evicted meanwhile (maxEntries), the token may have a newer lookup's.
    const pending = this.#backend.find(tokenHash).then(
      (grant) => {
        if (this.#entries.get(tokenHash) === entry) this.#put(tokenHash, grant ?? null);
        return grant;
      },
      (err: unknown) => {
        if (this.#entries.get(tokenHash) === entry) this.#entries.delete(tokenHash);
        throw err;
      },
    );
    const entry = this.#put(tokenHash, pending, Infinity);
    return pending;
  }

  #put(tokenHash: string, grant: Entry['grant'], until = this.#now() + this.#ttlMs): Entry {
    this.#entries.delete(tokenHash);
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    const entry = { grant, until };
    this.#entries.set(tokenHash, entry);
    return entry;
  }

  #cleanup(): void {
    const now = this.#now();
    if (!this.#backend.deleteLongExpired || now < this.#nextCleanup) return;
    this.#nextCleanup = now + CLEANUP_EVERY_MS;
    // Housekeeping, in chunks that wait for the event loop (the token answer goes first); a failure only means the
    // rows stay until the next try.
    this.#backend.deleteLongExpired(this.#keepExpiredMs).catch(() => {});
  }
}
