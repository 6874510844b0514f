// What one cache policy did, counted for metrics and tests; kept by CacheResources so reloads do not reset it.

export class CacheStats {
  lookups = 0;
  hits = 0;
  misses = 0;
  /**
   * Requests not looked up: non-deterministic, no tenant to scope by, an operation that is not cached, no-store, a
   * Responses API creation the model server stores.
   */
  bypassed = 0;
  /** Answers written to the cache. */
  stored = 0;
  /** Answers not stored: a policy after the lookup changed what the key is made of, so they answer another request. */
  changedAfterLookup = 0;
  /**
   * Answers not stored: the response policies made them for this request alone (a policy that changes answers skipped
   * by its condition, a classifier that saw no stream, a rewrite that depends on the request in a cache wider than an
   * app, a product's own rewrites in a global cache), and a hit skips the response flow of the request it answers.
   */
  notReplayable = 0;
  /** The store could not answer (counted as misses, never refused). */
  storeErrors = 0;
  /** The embeddings endpoint failed or timed out (semantic caches: counted as misses). */
  embeddingFailures = 0;
}
