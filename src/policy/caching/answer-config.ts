// Which configuration a cache entry was made under. A hit skips the response flow and the request policies after the
// lookup, so it is only safe when the policies that edit or refuse answers are those that made the entry: the compiled
// flow tells each cache a digest of them (configure-caches.ts), and entries live under it. A sanitizer added or made
// stricter later moves the cache to a new namespace; the entries of the old one are never replayed, and expire.
import { hash } from 'node:crypto';
import type { Policy } from '../types.js';
import { canonicalJson } from './canonical-json.js';

export interface AnswerConfig {
  /**
   * What shapes the answers of every request the cache sees (the gateway's templates): the namespace of its store (a
   * memory store of its own, the Redis key prefix, the semantic index's scope prefix).
   */
  readonly namespace: string;
  /**
   * What a product's own templates add for its requests: '' when they shape nothing, else `<digest>:`, put in the
   * entry key, so a change to one product's sanitizer leaves the other products' entries reachable.
   */
  productPart(product: string | undefined): string;
}

/** A digest of policy descriptions: short, as it goes in every key; 96 bits no configuration change will collide on. */
export function answerDigest(parts: unknown): string {
  return hash('sha256', canonicalJson(parts), 'base64url').slice(0, 16);
}

/** Nothing shapes the answers: a cache's configuration until a compiled flow tells it otherwise. */
export const UNSHAPED: AnswerConfig = { namespace: answerDigest([]), productPart: () => '' };

/** A cache lookup whose entries follow the answer-shaping configuration (ResponseCache, SemanticCacheLookup). */
export interface AnswerShapedCache extends Policy {
  /** Called by the compiled flow before it serves: the entries it stores and replays from then on are `config`'s. */
  configureAnswers(config: AnswerConfig): void;
}

export function isAnswerShapedCache(policy: Policy): policy is AnswerShapedCache {
  return typeof (policy as Partial<AnswerShapedCache>).configureAnswers === 'function';
}
