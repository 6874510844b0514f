import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import type { EndpointState } from '../../../endpoint-state.js';
import type { CycleContext, Scorer } from '../../../plugin-types.js';
import { MAX_INDEX_BLOCKS, PREFIX_CACHE_SCORER, prefixCacheScorer } from './prefix-cache-scorer.js';

/** Scores like the pipeline does, then tells the scorer which endpoint was chosen. */
function decide(scorer: Scorer, eps: EndpointState[], c: CycleContext, chosen: number): number[] | null {
  const out = new Float64Array(eps.length);
  const scored = scorer.score(c, eps, out);
  scorer.preRequest?.(c, eps[chosen]);
  return scored ? [...out] : null;
}

const block = (ch: string) => ch.repeat(64);

describe(PREFIX_CACHE_SCORER, () => {
  test('matched leading blocks / prompt blocks; the chosen endpoint learns the prompt', () => {
    const ratios: number[] = [];
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, {}, deps({ observePrefixHitRatio: (r) => void ratios.push(r) }));
    const eps = [endpoint(1), endpoint(2)];
    const system = block('s') + block('t');
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: system + block('a') + block('b') }), 0), [0, 0]);
    // Same system prompt, different question: endpoint 1 holds 2 of 4 blocks.
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: system + block('c') + block('d') }), 1), [0.5, 0]);
    // Exactly the first prompt again: all 4 blocks on endpoint 1, 2 on endpoint 2.
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: system + block('a') + block('b') }), 0), [1, 0.5]);
    assert.deepEqual(ratios, [0, 0, 1]);
  });

  test('the target model is part of the key', () => {
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, {}, deps());
    const eps = [endpoint(1)];
    decide(scorer, eps, ctx({ prompt: block('a'), targetModel: 'm1' }), 0);
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: block('a'), targetModel: 'm2' }), 0), [0]);
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: block('a'), targetModel: 'm1' }), 0), [1]);
  });

  test('abstains below one block; partial trailing blocks are ignored', () => {
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, {}, deps());
    const eps = [endpoint(1)];
    assert.equal(decide(scorer, eps, ctx({ prompt: 'short' }), 0), null);
    decide(scorer, eps, ctx({ prompt: block('a') + 'tail' }), 0);
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: block('a') + 'other tail' }), 0), [1]);
  });

  test('blockSize × charsPerToken sets the block; maxPrefixBlocksToMatch caps the prompt', () => {
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, { blockSize: 2, charsPerToken: 1, maxPrefixBlocksToMatch: 2 }, deps());
    const eps = [endpoint(1)];
    decide(scorer, eps, ctx({ prompt: 'aabbcc' }), 0);
    // Only "aa" and "bb" count; the third block is beyond the cap.
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: 'aabbzz' }), 0), [1]);
    assert.deepEqual(decide(scorer, eps, ctx({ prompt: 'aazz' }), 0), [0.5]);
  });

  test('each endpoint remembers as many blocks as its KV cache holds (autoTune), else lruCapacityPerServer', () => {
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, { blockSize: 1, charsPerToken: 1, lruCapacityPerServer: 3 }, deps());
    const small = endpoint(1, { blockSize: 1, numGpuBlocks: 2 });
    const unsized = endpoint(2);
    decide(scorer, [small], ctx({ prompt: 'abcd' }), 0);
    decide(scorer, [unsized], ctx({ prompt: 'abcd' }), 0);
    assert.deepEqual(decide(scorer, [small, unsized], ctx({ prompt: 'abcd' }), 0), [0.5, 0.75]);
  });

  test('an engine that counts more tokens than charsPerToken stands for holds fewer blocks of the prompt; one that counts fewer, no more', () => {
    // A prompt of 8 blocks of 4 characters (a token each, at the default 4 characters a token), an 8-token cache.
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, { blockSize: 1 }, deps());
    const counted = (charsPerToken: number) => {
      const ep = endpoint(1, { blockSize: 1, numGpuBlocks: 8, promptTokensTotal: 0 });
      ep.recordPick(0, 100 * charsPerToken);
      ep.recordScrape({ ...ep.metrics, promptTokensTotal: 100 }, 1050);
      return ep;
    };
    const prompt = 'abcdefghijklmnopqrstuvwxyz012345';
    const dense = counted(2);
    decide(scorer, [dense], ctx({ prompt }), 0);
    // Before: the whole prompt, 8 blocks, as though each token were 4 of its characters.
    assert.deepEqual(decide(scorer, [dense], ctx({ prompt }), 0), [0.5]);
    const sparse = counted(8);
    decide(scorer, [sparse], ctx({ prompt }), 0);
    assert.deepEqual(decide(scorer, [sparse], ctx({ prompt: prompt + 'abcd' }), 0), [8 / 9]);
  });

  test('a reported KV cache larger than MAX_INDEX_BLOCKS is remembered up to MAX_INDEX_BLOCKS only', () => {
    const maxBlocks = 65_536;
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, { blockSize: 1, charsPerToken: 1, maxPrefixBlocksToMatch: maxBlocks }, deps());
    const huge = endpoint(1, { blockSize: 1, numGpuBlocks: 1e12 });
    const prompt = (i: number) => String.fromCharCode(0x100 + i) + 'x'.repeat(maxBlocks - 1);
    const prompts = MAX_INDEX_BLOCKS / maxBlocks + 1;
    for (let i = 0; i < prompts; i++) decide(scorer, [huge], ctx({ prompt: prompt(i) }), 0);
    // Before: every prompt stayed (all 1e12 blocks allowed), the first one too.
    assert.deepEqual(decide(scorer, [huge], ctx({ prompt: prompt(0) }), 0), [0]);
    assert.deepEqual(decide(scorer, [huge], ctx({ prompt: prompt(prompts - 1) }), 0), [1]);
  });

  test('forget drops an endpoint', () => {
    const scorer = prefixCacheScorer(PREFIX_CACHE_SCORER, {}, deps());
    const ep = endpoint(1);
    decide(scorer, [ep], ctx({ prompt: block('a') }), 0);
    scorer.forget!(ep);
    const out = new Float64Array(1);
    scorer.score(ctx({ prompt: block('a') }), [ep], out);
    assert.equal(out[0], 0);
  });

  test('parameters are validated', () => {
    assert.throws(() => prefixCacheScorer(PREFIX_CACHE_SCORER, { blockSize: 0 }, deps()));
    assert.throws(() => prefixCacheScorer(PREFIX_CACHE_SCORER, { autoTune: 'yes' }, deps()));
  });
});
