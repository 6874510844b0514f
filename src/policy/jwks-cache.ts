// The JWKS a VerifyJWT policy fetches from its IdP, kept between requests. jose's createRemoteJWKSet makes a request
// wait for the reload once the set is stale and fails it when the reload fails, with no pause before the next try: an
// IdP that answers 503 (or hangs, or rate-limits) would fail every JWT while the keys held are still good, and each
// request would fetch again. Here a stale set is refreshed in the background while requests verify with the keys
// held, a failed refresh keeps them, and a failure pauses fetching for `cooldown`. Each failure is logged when it
// starts (or its reason changes), and the recovery once: requests only see a fault code, the operator needs the why.
import type { JWTVerifyGetKey } from 'jose';
import { silentLogger, type Logger } from '../lib/logger.js';
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

/** No key set was ever fetched (the last try failed): the server's trouble, not the token's. */
export class JwksUnavailableError extends Error {}

/** Why a fetch failed, for the log: the JWKS's answer, the timeout, or the network error and its cause. */
function reasonOf(error: unknown, timeout: number): string {
  const err = error as Error & { cause?: { message?: unknown } };
  if (err?.name === 'TimeoutError') return `no complete answer within ${timeout} ms`;
  const cause = typeof err?.cause?.message === 'string' ? `: ${err.cause.message}` : '';
  return `${err?.message ?? String(error)}${cause}`;
}

/**
 * A key resolver for jwtVerify over the JWKS at `settings.uri`, on the clock `now` (so tests can move it). Before
 * any set was fetched a request waits for the fetch and fails with a JwksUnavailableError; after a failure, requests
 * fail so until `cooldown` has passed. At most one fetch is in flight.
 * @example jwtVerify(token, cachedJwks({ uri, cacheMaxAge: 600_000, cooldown: 30_000, timeout: 5000 }, Date.now, logger))
 */
export function cachedJwks(settings: JwksSettings, now: () => number, logger: Logger = silentLogger): JWTVerifyGetKey {
  const { uri, cacheMaxAge, cooldown, timeout } = settings;
  let keys: JWTVerifyGetKey | undefined;
  let fetchedAt = -Infinity;
  /** Set while the last fetch failed: when, and why (`reason` as logged). */
  let failure: { at: number; reason: string } | undefined;
  let inFlight: Promise<void> | undefined;

  const settledAt = () => failure?.at ?? fetchedAt;
  const backingOff = (t: number) => failure !== undefined && t - failure.at < cooldown;
  const unavailable = () => new JwksUnavailableError(`no key set has been fetched from ${uri}: ${failure!.reason}`);

  function failed(error: unknown): void {
    const reason = reasonOf(error, timeout);
    // Once per outage, and again when its reason changes: a retry every cooldown must not flood the log.
    if (reason !== failure?.reason) {
      if (keys) logger.warn({ uri, reason, keysFetchedAt: new Date(fetchedAt).toISOString() }, 'the JWKS cannot be refreshed; JWTs are verified with the keys held until it can');
      else logger.warn({ uri, reason }, 'the JWKS cannot be fetched; JWTs are refused (500) until it can');
    }
    failure = { at: now(), reason };
  }

  function refresh(): Promise<void> {
    inFlight ??= fetchJwks(uri, timeout)
      .then(
        (set) => {
          if (failure) logger.info({ uri }, 'the JWKS can be fetched again');
          keys = set;
          fetchedAt = now();
          failure = undefined;
        },
        failed,
      )
      .finally(() => (inFlight = undefined));
    return inFlight;
  }

  return async (header, token) => {
    const t = now();
    if (!keys) {
      if (!inFlight && backingOff(t)) throw unavailable();
      await refresh();
      if (!keys) throw unavailable();
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
