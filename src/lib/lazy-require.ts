// Packages that only some deployments use (PostgreSQL, Redis, OpenTelemetry's SDK, gRPC, Ajv, CEL, jose), loaded at
// their first use instead of at every start: together they were most of the half second a gateway took to import.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A getter that loads `specifier` (a CommonJS package) the first time it is called. Synchronous, so call sites stay
 * as they are; types come from `import type`. A package that ships a separate ESM build (@bufbuild/cel) gives its
 * CommonJS copy here: load it only through this getter, or instanceof checks would meet two copies of its classes.
 * @example
 * const pg = lazyRequire<typeof import('pg')>('pg');
 * const pool = new (pg().Pool)(config);
 */
export function lazyRequire<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(specifier) as T);
}

/**
 * The same for an ESM-only package (jose), which Node 20 before 20.19 cannot require: a memoized dynamic import.
 * Start it where the package becomes needed (a policy compiled) and await it where it is used.
 * @example
 * const loadJose = lazyImport(() => import('jose'));
 * const { jwtVerify } = await loadJose();
 */
export function lazyImport<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => (loading ??= load());
}
