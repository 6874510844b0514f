// CommonJS packages that only some deployments use (PostgreSQL, Redis, OpenTelemetry's SDK, gRPC, Ajv), loaded at
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
