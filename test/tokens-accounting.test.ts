// Token accounting across policies and tenants: Responses API items in the prompt estimate, one tenant's shortfall
// and other tenants' admissions, two token quotas on one request, completions batches in a context length, and
// prompts counted only as far as a policy needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../src/gateway/context.js';
import { GatewayError } from '../src/gateway/errors.js';
import { OFF_LOOP_CHARS } from '../src/lib/token-count-thread.js';
import { countChatTokens, countTextTokens } from '../src/lib/tokenizer.js';
import { LLM_TOKEN_QUOTA_FAULTS, llmTokenQuota } from '../src/policy/policies/llm-token-quota/llm-token-quota.js';
import { roomMargin } from '../src/policy/policies/llm-token-quota/token-estimate.js';
import { PROMPT_TOKEN_LIMIT_FAULTS, promptTokenLimit } from '../src/policy/policies/prompt-token-limit/prompt-token-limit.js';
import { MAX_FIXED_SHORTFALL, PromptCalibration } from '../src/policy/prompt-calibration.js';
import { MONDAY, TestClock, countingTokens, fakeContext, testDeps, unique, type FakeRequest } from '../src/policy/testing.js';
import type { ApimState, Policy } from '../src/policy/types.js';
import { MemoryCounterStore } from '../src/store/counters/memory.js';

const PROMPT = countChatTokens([{ role: 'user', content: 'Hello there' }]);

/** Token quotas sharing one counter store, clock and calibration, as a gateway's policies do. */
function gateway() {
  const clock = new TestClock(MONDAY);
  const deps = { ...testDeps(new MemoryCounterStore(), { now: clock.now }), promptCalibration: new PromptCalibration(clock.now) };
  return (spec: Record<string, unknown>) => llmTokenQuota(unique('tq'), { interval: 1, timeUnit: 'hour', ...spec }, deps);
}

/** A request for a configured model (an InferenceModel of pool p), whose engines report `window` as context length. */
function request(req: FakeRequest, window?: number): RequestContext {
  const ctx = fakeContext(req);
  ctx.modelConfig = { pool: { name: 'p' } } as RequestContext['modelConfig'];
  if (window !== undefined) ctx.fleet = { contextWindow: (pool) => (pool === 'p' ? window : undefined) };
  return ctx;
}

const reserved = (ctx: RequestContext) => Number(ctx.responseHeaders['x-ratelimit-limit-tokens']) - Number(ctx.responseHeaders['x-ratelimit-remaining-tokens']);

const responses = (input: unknown[], extra: Record<string, unknown> = {}): FakeRequest => ({
  operation: 'responses',
  url: '/v1/responses',
  body: { messages: undefined, input, ...extra } as FakeRequest['body'],
});

test('Responses API tool calls and their results count in the prompt estimate, as the model server renders them', async () => {
  const policy = gateway()({ limit: 1_000_000, countOn: 'input' });
  const output = 'row '.repeat(2000);
  const args = JSON.stringify({ query: 'select * from orders' });
  const ctx = request(
    responses([
      { type: 'function_call', call_id: 'c1', name: 'sql', arguments: args },
      { type: 'function_call_output', call_id: 'c1', output },
      { role: 'user', content: 'Summarize' },
    ]),
  );
  await policy.admit!(ctx, {});
  // As the simulator renders them: the call as the assistant's turn, its result as the tool's.
  const rendered = countChatTokens([
    { role: 'assistant', content: args },
    { role: 'tool', content: output },
    { role: 'user', content: 'Summarize' },
  ]);
  assert.equal(reserved(ctx), rendered);
  // Before: 2,909 tokens of tool output were admitted under a 2,000-token quota as a 12-token prompt.
  const small = gateway()({ limit: 2000, countOn: 'input' });
  await assert.rejects(async () => small.admit!(request(responses([{ type: 'function_call_output', call_id: 'c1', output }, { role: 'user', content: 'hi' }])), {}), (err: unknown) => {
    assert.ok(err instanceof GatewayError && err.code === LLM_TOKEN_QUOTA_FAULTS.llmTokenQuotaViolation);
    assert.match(err.message, /needs more than 2000 tokens/);
    return true;
  });
  // Other kinds of item carry text the same way: a custom tool's input and result, a reasoning summary, untyped content.
  const kinds = gateway()({ limit: 1_000_000, countOn: 'input' });
  const more = request(
    responses([
      { type: 'custom_tool_call', call_id: 'c2', name: 'grep', input: 'needle' },
      { type: 'custom_tool_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'found it' }] },
      { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Thinking it over' }] },
      { content: 'Thanks' },
    ]),
  );
  await kinds.admit!(more, {});
  assert.equal(
    reserved(more),
    countChatTokens([
      { role: 'assistant', content: 'needle' },
      { role: 'tool', content: 'found it' },
      { role: 'assistant', content: 'Thinking it over' },
      { role: 'user', content: 'Thanks' },
    ]),
  );
});

test("one tenant's request far short of the server's count does not lock other tenants out of their quotas", async () => {
  const quota = gateway();
  const attacker = quota({ limit: 1_000_000 });
  // Something the estimate cannot count (an image) makes the server count 8,000 more than tollgate.
  const image = responses([{ role: 'user', content: [{ type: 'input_text', text: 'Hello there' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] }], { max_output_tokens: 10 });
  const ctx = request(image);
  const state: ApimState = {};
  await attacker.admit!(ctx, state);
  ctx.attempts = 1;
  ctx.usage = { inputTokens: 8000, outputTokens: 10, cachedTokens: 0 };
  await Promise.all((state.settlers ?? []).map((s) => s.settle(ctx)));
  // Before: "The request needs up to 8029 tokens", x-should-retry: false, for every tenant for 10 minutes.
  const victim = quota({ limit: 5000 });
  const asked = request({ body: { max_tokens: 16 } });
  await victim.admit!(asked, {});
  assert.ok(reserved(asked) <= PROMPT + MAX_FIXED_SHORTFALL + 16, `${reserved(asked)} reserved`);
  // A request that fits by tollgate's own count but not with the correction may be retried: the correction changes.
  const tight = quota({ limit: PROMPT + 16 + 100 });
  await assert.rejects(async () => tight.admit!(request({ body: { max_tokens: 16 } }), {}), (err: unknown) => {
    assert.ok(err instanceof GatewayError && err.code === LLM_TOKEN_QUOTA_FAULTS.llmTokenQuotaViolation);
    // Unlike a request that never fits, it is told when to try again: at the window's end, which being past a minute
    // also says x-should-retry: false, so an SDK does not sleep until then (retryHeaders).
    assert.ok(Number(err.headers['retry-after']) > 60, err.headers['retry-after']);
    assert.equal(err.headers['x-should-retry'], 'false');
    return true;
  });
});

test("tollgate's estimate of a cut stream's usage settles the reservation but teaches the prompt calibration nothing", async () => {
  const quota = gateway();
  const policy = quota({ limit: 1_000_000 });
  const ctx = request({ body: { max_tokens: 2000 } });
  const state: ApimState = {};
  await policy.admit!(ctx, state);
  assert.equal(reserved(ctx), PROMPT + 2000);
  // An estimate far above tollgate's count (the calibration would take it as the server's way of counting).
  ctx.attempts = 1;
  ctx.status = ctx.upstreamStatus = 200;
  ctx.usage = { inputTokens: PROMPT + 5000, outputTokens: 3, cachedTokens: 0, estimated: true };
  await Promise.all((state.settlers ?? []).map((s) => s.settle(ctx)));
  const next = request({ body: { max_tokens: 16 } });
  await policy.admit!(next, {});
  // Reconciled to the estimate (not the whole reservation kept), and the next request reserved as tollgate counts it.
  assert.equal(reserved(next), PROMPT + 5000 + 3 + (PROMPT + 16));
});

test("a second token quota takes a cap the first one chose as no client cap, and never raises it", async () => {
  const quota = gateway();
  // A gateway-wide quota with the default cap of 4,096, then a product's of 3,000 an hour.
  const wide = quota({ limit: 10_000_000, timeUnit: 'day' });
  const product = quota({ limit: 3000 });
  const ctx = request({});
  const state: ApimState = {};
  await wide.admit!(ctx, state);
  assert.equal(ctx.body!.max_completion_tokens, 4096);
  await product.admit!(ctx, state);
  // Before: 429 "needs up to 4108 tokens", x-should-retry: false, with nothing sent upstream.
  assert.equal(ctx.body!.max_completion_tokens, 3000 - PROMPT);
  assert.equal(reserved(ctx), 3000);
  // The other way round: a quota near its end chose 100; a later one with room to spare keeps it at 100.
  const nearEnd = quota({ limit: PROMPT + 100 });
  const roomy = quota({ limit: 1_000_000 });
  const other = request({});
  const both: ApimState = {};
  await nearEnd.admit!(other, both);
  await roomy.admit!(other, both);
  assert.equal(other.body!.max_completion_tokens, 100);
  assert.equal(reserved(other), PROMPT + 100);
  // A client's own cap is still the client's.
  const own = request({ body: { max_tokens: 4096 } });
  await quota({ limit: 1_000_000 }).admit!(own, {});
  await assert.rejects(async () => quota({ limit: 3000 }).admit!(own, {}), (err: unknown) => err instanceof GatewayError && err.headers['x-should-retry'] === 'false');
});

test("a completions batch's cap leaves room for its longest prompt in the context length, not for the batch's sum", async () => {
  const policy = gateway()({ limit: 100_000_000 });
  const prompt = 'The quick brown fox jumps over the lazy dog. '.repeat(19);
  const cap = async (prompts: string[]) => {
    const ctx = request({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, prompt: prompts, max_tokens: null } }, 8192);
    await policy.admit!(ctx, {});
    return ctx.body!.max_tokens;
  };
  // Before: 42 prompts of 193 tokens got one token each.
  assert.equal(await cap(Array.from({ length: 42 }, () => prompt)), 4096);
  const long = 'lorem ipsum dolor sit amet, '.repeat(1000);
  const longTokens = countTextTokens(long);
  assert.ok(longTokens > 8192 - 4096 && longTokens < 8192, `${longTokens}`);
  assert.equal(await cap([prompt, long, prompt]), 8192 - longTokens - roomMargin(longTokens));
});


// ~13,000 tokens, short enough to be counted on this thread, where countingTokens sees it (a longer one is counted,
// alike, in the token-count thread).
const HUGE = 'lorem ipsum dolor sit amet, '.repeat(OFF_LOOP_CHARS / 28);

test('PromptTokenLimit counts a prompt only as far as its rate, and its never-passing 429 tells SDKs not to retry', async () => {
  const policy: Policy = promptTokenLimit(unique('ptl'), { rate: '1000pm' }, testDeps(new MemoryCounterStore()));
  const tokens = await countingTokens(() =>
    assert.rejects(async () => policy.admit!(fakeContext({ body: { messages: [{ role: 'user', content: HUGE }] } }), {}), (err: unknown) => {
      assert.ok(err instanceof GatewayError && err.code === PROMPT_TOKEN_LIMIT_FAULTS.promptTokenLimitViolation);
      assert.equal(err.headers['retry-after'], undefined);
      assert.equal(err.headers['x-should-retry'], 'false');
      assert.match(err.message, /more than 1000 tokens; the limit is 1000pm tokens/);
      return true;
    }),
  );
  assert.ok(tokens <= 1100, `${tokens} tokens counted`);
});

test("LLMTokenQuota on output counts a prompt only as far as the pool's context length (for the cap's room)", async () => {
  const policy = gateway()({ limit: 100_000, countOn: 'output' });
  let ctx: RequestContext | undefined;
  const tokens = await countingTokens(async () => {
    ctx = request({ body: { messages: [{ role: 'user', content: HUGE }] } }, 1000);
    await policy.admit!(ctx, {});
  });
  assert.ok(tokens <= 1100, `${tokens} tokens counted`);
  assert.equal(ctx!.body!.max_completion_tokens, 4096, 'the prompt alone fills the context: the model server refuses it, not tollgate');
});
