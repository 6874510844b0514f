// LLMTokenQuota must reserve the output cap the model server will honour. It used to take the first of
// max_output_tokens, max_completion_tokens and max_tokens whatever the operation, so a chat request with
// `max_output_tokens: 1, max_tokens: 5000` reserved one output token while the server (it reads max_completion_tokens
// or max_tokens for chat, max_tokens for completions; tollgate's own simulator does the same) produced 5,000: the
// admission check was dodged and the counter ended far past its limit.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../gateway/errors.js';
import { countChatTokens, countTextTokens } from '../../../lib/tokenizer.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { LLM_TOKEN_QUOTA_FAULTS, llmTokenQuota } from './llm-token-quota.js';
import { MONDAY, TestClock, fakeContext, testDeps, unique, type FakeRequest } from '../../testing.js';
import type { ApimState } from '../../types.js';

const PROMPT = countChatTokens([{ role: 'user', content: 'Hello there' }]);

function make() {
  const clock = new TestClock(MONDAY);
  return llmTokenQuota(unique('tq-cap'), { limit: 100, interval: 1, timeUnit: 'hour', countOn: 'total' }, testDeps(new MemoryCounterStore(), { now: clock.now }));
}

async function admit(req: FakeRequest) {
  const policy = make();
  const ctx = fakeContext(req);
  const state: ApimState = {};
  await policy.admit!(ctx, state);
  return ctx;
}

const refused = (err: unknown) => err instanceof GatewayError && err.status === 429 && err.code === LLM_TOKEN_QUOTA_FAULTS.llmTokenQuotaViolation;

describe('LLMTokenQuota reserves the cap the model server honours', () => {
  test('chat: a small max_output_tokens (not a chat field) does not hide a large max_tokens', async () => {
    await assert.rejects(admit({ body: { max_output_tokens: 1, max_tokens: 5000 } }), refused);
  });

  test('chat: a small max_completion_tokens does not hide a larger max_tokens (servers differ on which wins)', async () => {
    await assert.rejects(admit({ body: { max_completion_tokens: 1, max_tokens: 5000 } }), refused);
  });

  test('completions: max_completion_tokens (not a completions field) does not hide max_tokens', async () => {
    const body = { messages: undefined, prompt: 'Hello there', max_completion_tokens: 1, max_tokens: 5000 };
    await assert.rejects(admit({ operation: 'completions', url: '/v1/completions', body }), refused);
  });

  test("completions: a cap only in a field the server ignores leaves the server's default of 16, reserved", async () => {
    const ctx = await admit({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, prompt: 'Hello there', max_completion_tokens: 1 } });
    assert.equal(ctx.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - countTextTokens('Hello there') - 16));
    assert.equal(ctx.body!.max_tokens, undefined);
  });

  test('responses: max_tokens (not a Responses field) does not count as the cap; tollgate sets max_output_tokens', async () => {
    const ctx = await admit({ operation: 'responses', url: '/v1/responses', body: { messages: undefined, input: 'Hello there', max_tokens: 1 } });
    assert.ok(typeof ctx.body!.max_output_tokens === 'number' && ctx.body!.max_output_tokens > 1 && ctx.body!.max_output_tokens <= 100);
  });

  test('a cap sent as null is no cap: tollgate sets one (null max_completion_tokens beside max_tokens leaves max_tokens the cap)', async () => {
    const ctx = await admit({ body: { max_tokens: null, max_completion_tokens: null } });
    const cap = ctx.body!.max_completion_tokens;
    assert.ok(typeof cap === 'number' && cap <= 100, `max_completion_tokens set upstream: ${cap}`);
    // vLLM's completions run to the end of the context on a null max_tokens (16 is for one left out).
    const completions = await admit({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, prompt: 'Hello there', max_tokens: null } });
    assert.ok(typeof completions.body!.max_tokens === 'number' && completions.body!.max_tokens > 16, `max_tokens set upstream: ${completions.body!.max_tokens}`);
    const both = await admit({ body: { max_tokens: 10, max_completion_tokens: null } });
    assert.equal(both.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - PROMPT - 10));
  });

  test('legitimate requests keep their own cap', async () => {
    const chat = await admit({ body: { max_tokens: 10 } });
    assert.equal(chat.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - PROMPT - 10));
    const modern = await admit({ body: { max_completion_tokens: 12 } });
    assert.equal(modern.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - PROMPT - 12));
  });
});

// Each of `n` choices may produce the whole cap: `n: 10, max_tokens: 20` is up to 200 output tokens, yet one cap was
// reserved, and a cap tollgate chose was set per choice while reserved once.
describe('LLMTokenQuota counts every choice of n', () => {
  test('n times the client\'s cap is reserved', async () => {
    await assert.rejects(admit({ body: { n: 10, max_tokens: 20 } }), refused);
    const ok = await admit({ body: { n: 2, max_tokens: 20 } });
    assert.equal(ok.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - PROMPT - 40));
  });

  test('a cap of tollgate\'s choosing is per choice, and n of them fit in what is reserved', async () => {
    const ctx = await admit({ body: { n: 4 } });
    const cap = ctx.body!.max_completion_tokens!;
    assert.ok(cap >= 1 && PROMPT + 4 * cap <= 100, `per-choice cap ${cap}`);
    assert.equal(ctx.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - PROMPT - 4 * cap));
  });

  test('completions: every best_of candidate is generated, so best_of counts like n when larger', async () => {
    const completions = (extra: object) => admit({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, prompt: 'Hello there', max_tokens: 20, ...extra } });
    await assert.rejects(completions({ best_of: 10 }), refused);
    const ok = await completions({ n: 1, best_of: 2 });
    assert.equal(ok.responseHeaders['x-ratelimit-remaining-tokens'], String(100 - countTextTokens('Hello there') - 40));
  });

  test('completions: a list of prompts gets the cap for each (30 prompts reserved as one ran far past the limit)', async () => {
    const reserved = async (prompt: unknown) => {
      const ctx = await admit({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, prompt, max_tokens: 10 } });
      return 100 - Number(ctx.responseHeaders['x-ratelimit-remaining-tokens']);
    };
    await assert.rejects(reserved(Array.from({ length: 10 }, () => 'Hi')), refused);
    // A second prompt adds its tokens and a second cap of 10.
    assert.ok((await reserved(['Hi', 'Hi'])) - (await reserved('Hi')) >= 10);
    assert.ok((await reserved([[1, 2], [3, 4], [5, 6]])) - (await reserved([1, 2])) >= 20, 'three prompts of token ids, three caps');
  });

  test('n on embeddings or responses changes nothing', async () => {
    const ctx = await admit({ operation: 'responses', url: '/v1/responses', body: { messages: undefined, input: 'Hello there', n: 50, max_output_tokens: 10 } });
    assert.ok(ctx.responseHeaders['x-ratelimit-remaining-tokens'] !== undefined);
  });
});

// A completions request without max_tokens gets 16 tokens per choice (OpenAI's and vLLM's default), yet tollgate
// reserved defaultMaxTokens and wrote `max_tokens: 4096` upstream: answers up to 256 times longer, charged in full.
describe("completions without max_tokens: the server's default of 16 per choice", () => {
  const completions = (extra: object) => admit({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, prompt: 'Hello there', ...extra } });
  const reserved = (ctx: { responseHeaders: Record<string, string | string[]> }) => 100 - Number(ctx.responseHeaders['x-ratelimit-remaining-tokens']) - countTextTokens('Hello there');

  test('is reserved, and the request goes upstream unchanged', async () => {
    const ctx = await completions({});
    assert.equal(reserved(ctx), 16);
    assert.equal(ctx.body!.max_tokens, undefined);
    assert.equal(ctx.bodyChanged, false);
  });

  test('for each choice of n or best_of', async () => {
    assert.equal(reserved(await completions({ n: 2 })), 32);
    assert.equal(reserved(await completions({ n: 1, best_of: 3 })), 48);
    await assert.rejects(completions({ best_of: 7 }), refused);
  });
});

// OpenAI's reasoning models refuse max_tokens on chat (400 unsupported_parameter, "use max_completion_tokens"); vLLM
// and tollgate's simulator take either.
describe('chat: the cap tollgate sets', () => {
  test('goes in max_completion_tokens, with no max_tokens beside it', async () => {
    const ctx = await admit({});
    assert.ok(typeof ctx.body!.max_completion_tokens === 'number' && ctx.body!.max_completion_tokens <= 100 - PROMPT);
    assert.equal('max_tokens' in ctx.body!, false);
  });

  test("is lowered in the same field by a later token quota, and a client's max_tokens is left as sent", async () => {
    const ctx = fakeContext({});
    const state: ApimState = {};
    await llmTokenQuota(unique('wide'), { limit: 1_000_000, interval: 1, timeUnit: 'hour' }, testDeps(new MemoryCounterStore())).admit!(ctx, state);
    assert.equal(ctx.body!.max_completion_tokens, 4096);
    await make().admit!(ctx, state);
    assert.equal(ctx.body!.max_completion_tokens, 100 - PROMPT);
    assert.equal('max_tokens' in ctx.body!, false);
    const own = await admit({ body: { max_tokens: 10 } });
    assert.deepEqual([own.body!.max_tokens, own.body!.max_completion_tokens, own.bodyChanged], [10, undefined, false]);
  });
});
