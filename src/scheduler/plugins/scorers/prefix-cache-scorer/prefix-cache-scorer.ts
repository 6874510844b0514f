// Prefers endpoints likely to hold the longest leading part of the prompt in their KV cache (prefix-cache affinity).
import { z } from 'zod';
import type { EndpointState } from '../../../endpoint-state.js';
import { CHARS_PER_TOKEN } from '../../../endpoint-state.js';
import { hashBlocks } from '../../../block-hash.js';
import { PrefixIndex } from '../../../prefix-index.js';
import type { Scorer, PluginFactory } from '../../../plugin-types.js';

export const PREFIX_CACHE_SCORER = 'prefix-cache-scorer';

/**
 * The most blocks an endpoint's index keeps however large a KV cache it reports (num_gpu_blocks × block_size): about
 * 100 bytes a block, so ~100 MiB per endpoint, and 16M tokens of cache at the default 16-token blocks. Without it one
 * absurd figure (1e12) let every unique prompt stay (40,000 prompts of 16 KiB held 960 MiB).
 */
export const MAX_INDEX_BLOCKS = 1 << 20;

const params = z
  .object({
    /** Tokens per block; characters stand in for tokens at charsPerToken each (16 × 4 = 64 characters). */
    blockSize: z.number().int().positive().default(16),
    charsPerToken: z.number().int().positive().default(CHARS_PER_TOKEN),
    maxPrefixBlocksToMatch: z.number().int().positive().max(65_536).default(256),
    /** Blocks remembered per endpoint when it does not export its KV-cache size (with autoTune, fewer for token-dense prompts). */
    lruCapacityPerServer: z.number().int().positive().default(31_250),
    /**
     * Size each endpoint's LRU from its cache_config_info (num_gpu_blocks × block_size) when exported, and by the
     * characters per token its prompt-token counter shows.
     */
    autoTune: z.boolean().default(true),
  })
  .strict();

/**
 * The leading characters of a prompt the scorer configured with `raw` reads (hashBlocks' whole blocks, at most
 * maxPrefixBlocksToMatch): a request need keep no more for it (promptPrefix()). Infinity for parameters it refuses.
 */
export function prefixCharsRead(raw: unknown): number {
  const p = params.safeParse(raw ?? {});
  return p.success ? p.data.maxPrefixBlocksToMatch * p.data.blockSize * p.data.charsPerToken : Infinity;
}

/**
 * Score = leading blocks the endpoint holds / blocks in the prompt. The chosen endpoint learns the
 * prompt's blocks at every decision, since the model server will cache them by serving it (a fallback that serves it
 * instead learns them when the request goes on to it).
 * @example prefixCacheScorer('prefix-cache-scorer', { blockSize: 16 }, deps)
 */
export const prefixCacheScorer: PluginFactory<Scorer> = (name, raw, deps) => {
  const p = params.parse(raw ?? {});
  const blockChars = p.blockSize * p.charsPerToken;
  const index = new PrefixIndex<EndpointState>();
  // One decision runs start to end without yielding, so the hashes of score() are still here at preRequest().
  const hashes = new Float64Array(p.maxPrefixBlocksToMatch);
  let blocks = 0;

  /**
   * Blocks of `blockSize` tokens the endpoint's KV cache holds, each standing for `charsPerToken` × blockSize
   * characters of prompt; with autoTune, fewer where the engine counts more tokens for this gateway's prompt characters
   * (promptCharsPerToken): token-dense text (code, CJK, identifiers at ~2 characters a token) fills the cache with fewer
   * characters, and so does other traffic to the same engine. Never more than charsPerToken: an index that believes it
   * holds more than the cache does steers prompts to an engine that has dropped them, one that holds less only
   * forgets a prefix early.
   */
  const capacityOf = (ep: EndpointState): number => {
    if (!p.autoTune) return p.lruCapacityPerServer;
    const m = ep.metrics;
    const blocks = m.numGpuBlocks ? (m.numGpuBlocks * (m.blockSize ?? p.blockSize)) / p.blockSize : p.lruCapacityPerServer;
    const dense = Math.min(1, (ep.promptCharsPerToken ?? p.charsPerToken) / p.charsPerToken);
    return Math.min(MAX_INDEX_BLOCKS, Math.max(1, Math.floor(blocks * dense)));
  };

  return {
    type: PREFIX_CACHE_SCORER,
    name,
    score(ctx, candidates, out) {
      blocks = hashBlocks(ctx.request.targetModel, ctx.request.prompt, blockChars, p.maxPrefixBlocksToMatch, hashes);
      if (blocks === 0) return false;
      index.match(hashes, blocks);
      for (let i = 0; i < candidates.length; i++) out[i] = index.matched(candidates[i]) / blocks;
      return true;
    },
    preRequest(_ctx, chosen) {
      if (blocks === 0) return;
      deps.observePrefixHitRatio(index.matched(chosen) / blocks);
      index.remember(chosen, capacityOf(chosen));
    },
    fallback(ctx, endpoint) {
      // Hashed again: other decisions may have run since this one's score().
      blocks = hashBlocks(ctx.request.targetModel, ctx.request.prompt, blockChars, p.maxPrefixBlocksToMatch, hashes);
      if (blocks === 0) return;
      index.match(hashes, blocks);
      index.remember(endpoint, capacityOf(endpoint));
    },
    forget(ep) {
      index.remove(ep);
    },
  } satisfies Scorer;
};
