// The JWKS a VerifyJWT policy fetches from its IdP, kept between requests. jose's createRemoteJWKSet makes a request
// wait for the reload once the set is stale and fails it when the reload fails, with no pause before the next try: an
// IdP that answers 503 (or hangs, or rate-limits) would fail every JWT while the keys held are still good, and each
// request would fetch again. Here a stale set is refreshed in the background while requests verify with the keys
// held, a failed refresh keeps them, and a failure pauses fetching for `cooldown`.
import type { JWTVerifyGetKey } from 'jose';
import { readCapped } from '../lib/read-capped.js';
import { loadJose } from './jwt-keys.js';

export interface JwksSettings {
  uri: string;
  /** Milliseconds, like the rest: a set older than this is refreshed (in the background once a set is held). */
  cacheMaxAge: number;
  /** No fetch this soon after a failed one, nor for a token's unknown `kid` this soon after any fetch. */
  cooldown: number;
  timeout: number;
}

/** A key set is a few KiB; an IdP (or whatever answers at its address) sending more is not sending one. */
const MAX_JWKS_BYTES = 1024 * 1024;

async function fetchJwks(uri: string, timeout: number): Promise<JWTVerifyGetKey> {
  const { createLocalJWKSet } = await loadJose();
  // Like jose, no redirect is followed: a JWKS that moved is a configuration change, not a thing to chase.
  const res = await fetch(uri, {
    redirect: 'manual',
    signal: AbortSignal.timeout(timeout),
    headers: { accept: 'application/json, application/jwk-set+json' },
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`the JWKS at ${uri} answered ${res.status}`);
  }
  const text = (await readCapped(res.body ?? new ReadableStream<Uint8Array>(), MAX_JWKS_BYTES, () => new Error(`the JWKS at ${uri} is larger than ${MAX_JWKS_BYTES} bytes`))).toString('utf8');
  return createLocalJWKSet(JSON.parse(text));
}

const isNoMatchingKey = (err: unknown) => (err as { code?: unknown } | null)?.code === 'ERR_JWKS_NO_MATCHING_KEY';

/**
 * A key resolver for jwtVerify over the JWKS at `settings.uri`, on the clock `now` (so tests can move it). Before
 * any set was fetched a request waits for the fetch and fails with its error; after a failure, requests fail with
 * that error until `cooldown` has passed. At most one fetch is in flight.
 * @example jwtVerify(token, cachedJwks({ uri, cacheMaxAge: 600_000, cooldown: 30_000, timeout: 5000 }, Date.now))
 */
export function cachedJwks(settings: JwksSettings, now: () => number): JWTVerifyGetKey {
  const { uri, cacheMaxAge, cooldown, timeout } = settings;
  let keys: JWTVerifyGetKey | undefined;
  let fetchedAt = -Infinity;
  /** Set while the last fetch failed: when, and why. */
  let failure: { at: number; error: unknown } | undefined;
  let inFlight: Promise<void> | undefined;

  const settledAt = () => failure?.at ?? fetchedAt;
  const backingOff = (t: number) => failure !== undefined && t - failure.at < cooldown;

  function refresh(): Promise<void> {
    inFlight ??= fetchJwks(uri, timeout)
      .then(
        (set) => {
          keys = set;
          fetchedAt = now();
          failure = undefined;
        },
        (error: unknown) => {
          failure = { at: now(), error };
        },
      )
      .finally(() => (inFlight = undefined));
    return inFlight;
  }

  return async (header, token) => {
    const t = now();
    if (!keys) {
      if (!inFlight && backingOff(t)) throw failure!.error;
      await refresh();
      if (!keys) throw failure!.error;
    } else if (t - fetchedAt >= cacheMaxAge && !backingOff(t)) void refresh();
    try {
      return await keys(header, token);
    } catch (err) {
      // A kid the held set lacks may be a rotated-in key: wait for the fetch in flight, or start one if the last
      // fetch is older than cooldown (so made-up kids cannot make the gateway fetch on every request).
      if (!isNoMatchingKey(err) || (!inFlight && t - settledAt() < cooldown)) throw err;
      await refresh();
      return keys(header, token);
    }
  };
}
