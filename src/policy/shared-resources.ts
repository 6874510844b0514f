// Stateful things policies keep between requests (fetched tokens, JWKS caches, connection pools), shared across
// engine rebuilds: the engine is recompiled on every configuration or store change, and a rebuilt policy with the
// same settings should not refetch its upstream token or its keys.
import { createHash } from 'node:crypto';

/** Kept per scope; the least recently used beyond this are dropped (and garbage-collected once unused). */
const MAX_PER_SCOPE = 64;

const scopes = new WeakMap<object, Map<string, unknown>>();

/**
 * The resource for these settings within `scope`, created on first use. Engines built with the same dependency
 * (e.g. their clock, `deps.now`) share it; tests with their own clock get their own.
 * @example sharedResource(deps.now, 'jwks', settings, () => cachedJwks(settings, deps.now))
 */
export function sharedResource<T>(scope: object, kind: string, settings: unknown, create: () => T): T {
  let byKey = scopes.get(scope);
  if (!byKey) scopes.set(scope, (byKey = new Map()));
  // Hashed: settings may hold secrets, which should not sit in a map key in the clear.
  const key = `${kind}:${createHash('sha256').update(JSON.stringify(settings)).digest('hex')}`;
  let value = byKey.get(key) as T | undefined;
  if (value === undefined) {
    value = create();
    if (byKey.size >= MAX_PER_SCOPE) byKey.delete(byKey.keys().next().value!);
  } else byKey.delete(key);
  byKey.set(key, value);
  return value;
}
