// LLMTokenQuota: what is reserved, the cap set upstream, stream usage, reconciliation, concurrency, product quotas,
// faults — on every counter store backend.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens } from 'gpt-tokenizer';
import type { RequestContext } from '../../../gateway/context.js';
import { GatewayError } from '../../../gateway/errors.js';
import { OFF_LOOP_CHARS, closeTokenCountThread } from '../../../lib/token-count-thread.js';
import { countChatTokens, serializeMessages } from '../../../lib/tokenizer.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { describeOnCounterBackends } from '../../../store/counters/test-counter-stores.js';
import { policyKeys, productKeys, windowKey } from '../../counter-keys.js';
import { MemoryIdentitySource } from '../../memory-identity.js';
import { MONDAY, TestClock, countingTokens, fakeContext, testDeps, unique, type FakeRequest } from '../../testing.js';
import type { ApimState } from '../../types.js';
import { LLM_TOKEN_QUOTA_FAULTS, llmTokenQuota } from './llm-token-quota.js';
import { roomMargin } from './token-estimate.js';

const PROMPT = countChatTokens([{ role: 'user', content: 'Hello there' }]);
const HOUR = 3_600_000;
/** The hour window holding MONDAY. */
const HOUR_OF_MONDAY = { startMs: MONDAY, endMs: MONDAY + HOUR };

function isViolation(err: unknown): err is GatewayError {
  return err instanceof GatewayError && err.status === 429 && err.code === LLM_TOKEN_QUOTA_FAULTS.llmTokenQuotaViolation;
}

describe('config', () => {
  const deps = testDeps(new MemoryCounterStore());
  const bad: [name: string, spec: unknown, message: RegExp][] = [
    ['no limit', { timeUnit: 'hour' }, /limit is required/],
    ['no timeUnit', { limit: 100 }, /timeUnit is required/],
    ['an unknown countOn', { limit: 100, timeUnit: 'hour', countOn: 'both' }, /Invalid option/],
    ['product config with its own limit', { useQuotaConfigInAPIProduct: true, limit: 5 }, /leave limit and timeUnit out/],
    ['a zero defaultMaxTokens', { limit: 100, timeUnit: 'hour', defaultMaxTokens: 0 }, /Too small|>0/],
  ];
  for (const [name, spec, message] of bad) test(name, () => assert.throws(() => llmTokenQuota('t', spec, deps), message));
});

describeOnCounterBackends((counters, replica) => {

  function make(spec: Record<string, unknown>, clock = new TestClock(MONDAY)) {
    const name = unique('tq');
    const policy = llmTokenQuota(name, spec, testDeps(counters(), { now: clock.now }));
    /** The counter of the window holding MONDAY (timeUnit hour), for the default identifier without a key. */
    const used = () => counters().get(windowKey(policyKeys('tq', name)(''), HOUR_OF_MONDAY), clock.t);
    return { policy, used, clock };
  }

  async function admit(policy: ReturnType<typeof make>['policy'], req: FakeRequest = {}, history?: number): Promise<{ ctx: RequestContext; state: ApimState }> {
    const ctx = fakeContext(req);
    // What the stored response a follow-up continues brings in (StoredResponseRouting.continueAt sets it).
    ctx.historyTokens = history;
    // A configured model (an InferenceModel of pool p), as the data plane resolves it before the policies.
    ctx.modelConfig = { pool: { name: 'p' } } as RequestContext['modelConfig'];
    const state: ApimState = {};
    await policy.admit!(ctx, state);
    return { ctx, state };
  }

  const settle = (ctx: RequestContext, state: ApimState) => Promise.all((state.settlers ?? []).map((s) => s.settle(ctx)));

  test('reserves the prompt plus the client\'s max_tokens, and shows the token headers', async () => {
    const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
    const { ctx } = await admit(policy, { body: { max_tokens: 50 } });
    assert.equal(await used(), PROMPT + 50);
    assert.equal(ctx.bodyChanged, false, 'the client\'s own cap goes upstream unchanged');
    assert.deepEqual(ctx.responseHeaders, {
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': String(1000 - PROMPT - 50),
      'x-ratelimit-reset-tokens': '1h0m0s',
    });
  });

  test('a changed time unit starts a new counter: an hour used up, then a minute from the same instant', async () => {
    const clock = new TestClock(MONDAY + 30_000);
    const name = unique('tq');
    const spec = (timeUnit: string) => ({ limit: PROMPT + 50, timeUnit });
    await admit(llmTokenQuota(name, spec('hour'), testDeps(counters(), { now: clock.now })), { body: { max_tokens: 50 } });
    const perMinute = llmTokenQuota(name, spec('minute'), testDeps(counters(), { now: clock.now }));
    // Before: refused with retry-after 3570, the minute at the top of the hour counted on the hour's counter.
    const { ctx, state } = await admit(perMinute, { body: { max_tokens: 50 } });
    assert.equal(ctx.responseHeaders['x-ratelimit-reset-tokens'], '30s');
    ctx.attempts = 1;
    ctx.usage = { inputTokens: PROMPT, outputTokens: 50, cachedTokens: 0 };
    await settle(ctx, state);
    await assert.rejects(async () => perMinute.admit!(fakeContext({ body: { max_tokens: 50 } }), {}), (err: unknown) => isViolation(err) && err.headers['retry-after'] === '30');
  });

  test('max_completion_tokens and max_output_tokens count as the cap too', async () => {
    const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
    await admit(policy, { body: { max_completion_tokens: 7 } });
    assert.equal(await used(), PROMPT + 7);
    await admit(policy, { operation: 'responses', url: '/v1/responses', body: { messages: undefined, input: 'Hello there', max_output_tokens: 3 } });
    assert.equal(await used(), PROMPT + 7 + 2 + 3);
  });

  test('without a cap, defaultMaxTokens is reserved and set upstream', async () => {
    const { policy, used } = make({ limit: 1000, timeUnit: 'hour', defaultMaxTokens: 64 });
    const chat = await admit(policy);
    assert.equal(chat.ctx.body!.max_completion_tokens, 64);
    assert.equal(chat.ctx.bodyChanged, true);
    const responses = await admit(policy, { operation: 'responses', url: '/v1/responses', body: { messages: undefined, input: 'Hi' } });
    assert.equal(responses.ctx.body!.max_output_tokens, 64);
    assert.equal(responses.ctx.body!.max_tokens, undefined);
    assert.equal(await used(), PROMPT + 64 + 1 + 64);
  });

  test('a cap of tollgate\'s choosing never exceeds the quota, and shrinks to what is left', async () => {
    const { policy, used } = make({ limit: PROMPT + 100, timeUnit: 'hour', defaultMaxTokens: 4096 });
    const first = await admit(policy);
    assert.equal(first.ctx.body!.max_completion_tokens, 100, 'the whole quota at most');
    first.ctx.attempts = 1;
    first.ctx.usage = { inputTokens: PROMPT, outputTokens: 60, cachedTokens: 0 };
    await settle(first.ctx, first.state);
    const second = await admit(policy);
    assert.equal(second.ctx.body!.max_completion_tokens, 100 - 60 - PROMPT, 'what is left after this prompt');
    assert.equal(await used(), PROMPT + 100);
    await assert.rejects(async () => policy.admit!(fakeContext(), {}), (err: unknown) => isViolation(err) && err.headers['retry-after'] !== undefined);
  });

  test('servers that count more prompt tokens than tollgate (a chat template): later reservations count what they did', async () => {
    const { policy, used } = make({ limit: 10_000, timeUnit: 'hour' });
    const first = await admit(policy, { body: { max_tokens: 10 } });
    first.ctx.attempts = 1;
    first.ctx.usage = { inputTokens: PROMPT + 30, outputTokens: 10, cachedTokens: 0 };
    await settle(first.ctx, first.state);
    assert.equal(await used(), PROMPT + 40);
    const second = await admit(policy, { body: { max_tokens: 10 } });
    assert.equal(await used(), 2 * (PROMPT + 40), 'the second request reserved its prompt as the server counts it');
    assert.equal(second.ctx.responseHeaders['x-ratelimit-remaining-tokens'], String(10_000 - 2 * (PROMPT + 40)));
    // Without the correction, requests admitted together ended past the limit by the shortfall each; now the sum of
    // what the server reports stays within it.
    const limit = 5 * (PROMPT + 40);
    const tight = make({ limit, timeUnit: 'hour' });
    const warm = await admit(tight.policy, { body: { max_tokens: 10 } });
    warm.ctx.attempts = 1;
    warm.ctx.usage = { inputTokens: PROMPT + 30, outputTokens: 10, cachedTokens: 0 };
    await settle(warm.ctx, warm.state);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => admit(tight.policy, { body: { max_tokens: 10 } })));
    const admitted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    await Promise.all(
      admitted.map(({ ctx, state }) => {
        ctx.attempts = 1;
        ctx.usage = { inputTokens: PROMPT + 30, outputTokens: 10, cachedTokens: 0 };
        return settle(ctx, state);
      }),
    );
    assert.equal(admitted.length, 4);
    assert.ok((await tight.used()) <= limit, `${await tight.used()} <= ${limit}`);
  });

  test('a model a route to a URL takes (no InferenceModel) is not calibrated: its name is the client\'s to choose', async () => {
    const { policy, used } = make({ limit: 10_000, timeUnit: 'hour' });
    const unconfigured = async () => {
      const ctx = fakeContext({ body: { max_tokens: 10 } });
      const state: ApimState = {};
      await policy.admit!(ctx, state);
      ctx.attempts = 1;
      ctx.usage = { inputTokens: PROMPT + 30, outputTokens: 10, cachedTokens: 0 };
      await settle(ctx, state);
    };
    await unconfigured();
    const before = await used();
    await admit(policy, { body: { max_tokens: 10 } });
    assert.equal((await used()) - before, PROMPT + 10, 'nothing learned from it');
  });

  test('tool definitions count as prompt: the model server renders them into it', async () => {
    const plain = make({ limit: 10_000, timeUnit: 'hour' });
    await admit(plain.policy, { body: { max_tokens: 10 } });
    const withTools = make({ limit: 10_000, timeUnit: 'hour' });
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city, now and for the week ahead', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    await admit(withTools.policy, { body: { max_tokens: 10, tools } });
    assert.ok((await withTools.used()) > (await plain.used()) + 20, `${await withTools.used()} against ${await plain.used()}`);
  });

  test("a cap of tollgate's choosing leaves the prompt room in the pool's context length; unknown or already full, it does not", async () => {
    const { policy } = make({ limit: 100_000, timeUnit: 'hour', defaultMaxTokens: 4096 });
    const withWindow = async (window: number | undefined) => {
      const ctx = fakeContext();
      ctx.modelConfig = { pool: { name: 'p' } } as RequestContext['modelConfig'];
      ctx.fleet = { contextWindow: (pool) => (pool === 'p' ? window : undefined) };
      await policy.admit!(ctx, {});
      return ctx.body!.max_completion_tokens;
    };
    assert.equal(await withWindow(1000), 1000 - PROMPT - roomMargin(PROMPT));
    assert.equal(await withWindow(undefined), 4096);
    assert.equal(await withWindow(PROMPT), 4096, 'the prompt alone fills it: the model server refuses it, not tollgate');
    assert.equal(await withWindow(100_000), 4096);
  });

  test('countOn input reserves the prompt only and leaves the body alone; embeddings have no output', async () => {
    const input = make({ limit: 1000, timeUnit: 'hour', countOn: 'input' });
    const { ctx } = await admit(input.policy);
    assert.equal(await input.used(), PROMPT);
    assert.equal(ctx.bodyChanged, false);
    const total = make({ limit: 1000, timeUnit: 'hour' });
    await admit(total.policy, { operation: 'embeddings', url: '/v1/embeddings', body: { messages: undefined, input: ['Hello', 'there'] } });
    assert.equal(await total.used(), 2);
  });

  test('countOn output reserves the cap only', async () => {
    const { policy, used } = make({ limit: 1000, timeUnit: 'hour', countOn: 'output' });
    await admit(policy, { body: { max_tokens: 30 } });
    assert.equal(await used(), 30);
  });

  test('a stream asks for usage, and flags the usage chunk for stripping when the client did not ask', async () => {
    const { policy } = make({ limit: 1000, timeUnit: 'hour' });
    const plain = await admit(policy, { body: { stream: true, max_tokens: 5 } });
    assert.deepEqual(plain.ctx.body!.stream_options, { include_usage: true });
    assert.equal(plain.ctx.stripStreamUsage, true);
    assert.equal(plain.ctx.bodyChanged, true);
    const asked = await admit(policy, { body: { stream: true, max_tokens: 5, stream_options: { include_usage: true } } });
    assert.equal(asked.ctx.stripStreamUsage, undefined);
    assert.equal(asked.ctx.bodyChanged, false);
    const declined = await admit(policy, { body: { stream: true, max_tokens: 5, stream_options: { include_usage: false } } });
    assert.deepEqual(declined.ctx.body!.stream_options, { include_usage: true });
    assert.equal(declined.ctx.stripStreamUsage, true);
  });

  describe('reconciliation', () => {
    test('the counter moves to the real usage', async () => {
      const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
      const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
      ctx.attempts = 1;
      ctx.usage = { inputTokens: 12, outputTokens: 30, cachedTokens: 0 };
      await settle(ctx, state);
      assert.equal(await used(), 42);
    });

    test('usage above the reservation is charged in full (over the limit if need be)', async () => {
      const { policy, used } = make({ limit: 100, timeUnit: 'hour', countOn: 'output' });
      const { ctx, state } = await admit(policy, { body: { max_tokens: 90 } });
      ctx.attempts = 1;
      ctx.usage = { inputTokens: 5, outputTokens: 120, cachedTokens: 0 };
      await settle(ctx, state);
      assert.equal(await used(), 120);
    });

    test('a request that never reached a model server gives its reservation back', async () => {
      const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
      const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
      await settle(ctx, state);
      assert.equal(await used(), 0);
    });

    test('an answer 2xx without usage (a stream cut before it) keeps the reservation: the model may have run to its cap', async () => {
      const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
      const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
      ctx.attempts = 1;
      ctx.upstreamStatus = 200;
      ctx.status = 200;
      await settle(ctx, state);
      assert.equal(await used(), PROMPT + 100);
    });

    test('a 2xx head whose answer never reached the client (the gateway answered 502/504 instead) gives the reservation back', async () => {
      // Before: the model server's 200 head kept the whole cap though the client got an error, and each SDK retry paid it again.
      for (const status of [502, 504]) {
        const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
        const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
        ctx.attempts = 1;
        ctx.upstreamStatus = 200;
        ctx.status = status;
        await settle(ctx, state);
        assert.equal(await used(), 0, String(status));
      }
    });

    test('an answer Envoy did not show the gateway (ext_proc, response events skipped) keeps the reservation', async () => {
      const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
      const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
      ctx.attempts = 1;
      ctx.answerUnseen = true;
      await settle(ctx, state);
      assert.equal(await used(), PROMPT + 100);
    });

    test('a model server that refused the request (4xx, 429, 5xx), or none that answered, gives the reservation back', async () => {
      // Before: any attempt kept it, so a refused connection or a 400 cost the whole cap (a default cap of 4,096 took
      // an app's last tokens for the hour).
      for (const status of [400, 429, 500, 503, undefined]) {
        const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
        const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
        ctx.attempts = 2;
        ctx.upstreamStatus = status;
        await settle(ctx, state);
        assert.equal(await used(), 0, String(status));
      }
    });

    test("a model server's 4xx, 429 or 5xx answer shows the reservation given back, as the counter will be; a 2xx keeps it", async () => {
      const { policy, used } = make({ limit: 1000, timeUnit: 'hour' });
      for (const status of [400, 429, 503]) {
        const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
        // The head as the proxy shapes it from the policies' headers before the response flow runs.
        const head = { ...ctx.responseHeaders };
        assert.equal(head['x-ratelimit-remaining-tokens'], String(1000 - PROMPT - 100));
        policy.respond!(ctx, state, status)!.headers!(status, head);
        assert.equal(head['x-ratelimit-remaining-tokens'], '1000', String(status));
        ctx.attempts = 1;
        ctx.upstreamStatus = status;
        await settle(ctx, state);
        assert.equal(await used(), 0, String(status));
      }
      const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
      assert.equal(policy.respond!(ctx, state, 200), undefined);
    });

    test('a late settlement lands in the window of its reservation', async () => {
      const { policy, used, clock } = make({ limit: 1000, timeUnit: 'hour' });
      const { ctx, state } = await admit(policy, { body: { max_tokens: 100 } });
      clock.advance(HOUR);
      const next = await admit(policy, { body: { max_tokens: 10 } });
      assert.equal(next.ctx.responseHeaders['x-ratelimit-remaining-tokens'], String(1000 - PROMPT - 10), 'a new window');
      ctx.attempts = 1;
      ctx.usage = { inputTokens: 1, outputTokens: 1, cachedTokens: 0 };
      await settle(ctx, state);
      clock.t = MONDAY;
      assert.equal(await used(), 2);
    });
  });

  test('100 concurrent admissions never exceed the limit, and reconcile exactly', async () => {
    const perRequest = PROMPT + 40;
    const limit = perRequest * 37 + perRequest - 1;
    const { policy, used } = make({ limit, timeUnit: 'hour' });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => admit(policy, { body: { max_tokens: 40 } })));
    const admitted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const r of results) if (r.status === 'rejected') assert.ok(isViolation(r.reason));
    assert.equal(admitted.length, 37);
    assert.equal(await used(), 37 * perRequest);
    let actual = 0;
    await Promise.all(
      admitted.map(({ ctx, state }, i) => {
        ctx.attempts = 1;
        ctx.usage = { inputTokens: PROMPT, outputTokens: i % 41, cachedTokens: 0 };
        actual += PROMPT + (i % 41);
        return settle(ctx, state);
      }),
    );
    assert.equal(await used(), actual);
  });

  /** A Responses API follow-up of a short input, continuing a stored response. */
  const followUp: FakeRequest = { operation: 'responses', body: { messages: undefined, input: 'ok?', max_output_tokens: 5, previous_response_id: 'resp_1' } };

  test('a follow-up reserves the stored conversation it brings in: concurrent follow-ups never push past the limit', async () => {
    const history = 3011;
    const limit = 20_000;
    const { policy, used } = make({ limit, timeUnit: 'hour' });
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => admit(policy, followUp, history)));
    const admitted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const r of results) if (r.status === 'rejected') assert.ok(isViolation(r.reason));
    // Before: all 12 were admitted on their few tokens of input each, and their servers billed 1.97 times the limit.
    assert.ok(admitted.length >= 5 && admitted.length <= 6, `${admitted.length} admitted`);
    await Promise.all(
      admitted.map(({ ctx, state }) => {
        ctx.attempts = 1;
        ctx.usage = { inputTokens: history + 13, outputTokens: 5, cachedTokens: 0 };
        return settle(ctx, state);
      }),
    );
    assert.ok((await used()) <= limit, `${await used()} <= ${limit}`);
  });

  test("a follow-up teaches the calibration nothing: its server's count holds the conversation, no way of counting", async () => {
    const { policy, used } = make({ limit: 100_000, timeUnit: 'hour' });
    for (let i = 0; i < 4; i++) {
      const { ctx, state } = await admit(policy, followUp, i === 0 ? undefined : 3000);
      ctx.attempts = 1;
      ctx.usage = { inputTokens: 3013, outputTokens: 5, cachedTokens: 0 };
      await settle(ctx, state);
    }
    const before = await used();
    await admit(policy, { body: { max_tokens: 10 } });
    // Before: the history each follow-up brought in was taken for a shortfall, and every tenant's reservations rose by it.
    assert.equal((await used()) - before, PROMPT + 10);
  });

  test('a refusal is 429 with retry-after and the token headers', async () => {
    const clock = new TestClock(MONDAY + 20 * 60_000);
    const { policy } = make({ limit: PROMPT + 60, timeUnit: 'hour' }, clock);
    const first = await admit(policy, { body: { max_tokens: 50 } });
    first.ctx.usage = { inputTokens: PROMPT, outputTokens: 50, cachedTokens: 0 };
    await settle(first.ctx, first.state);
    const ctx = fakeContext({ body: { max_tokens: 50 } });
    await assert.rejects(async () => policy.admit!(ctx, {}), (err: unknown) => {
      assert.ok(isViolation(err));
      assert.equal(err.headers['retry-after'], '2400', 'spent: the window\'s end');
      return true;
    });
    assert.equal(ctx.responseHeaders['x-ratelimit-remaining-tokens'], '10');
    assert.equal(ctx.body!.max_tokens, 50, 'a refused request is not changed');
  });

  test('a refusal only reservations in flight cause says to retry in a moment, not at the window\'s end', async () => {
    const clock = new TestClock(MONDAY + 20 * 60_000);
    // No max_tokens: the first request reserves all the quota its prompt leaves.
    const { policy, used } = make({ limit: 1000, timeUnit: 'hour' }, clock);
    const first = await admit(policy);
    assert.equal(await used(), 1000);
    const refused = async (why: string, retryAfter: string) =>
      assert.rejects(async () => policy.admit!(fakeContext(), {}), (err: unknown) => {
        assert.ok(isViolation(err));
        assert.equal(err.headers['retry-after'], retryAfter, why);
        return true;
      });
    await refused('held by the first request, which gives back what it does not use', '1');
    first.ctx.usage = { inputTokens: PROMPT, outputTokens: 12, cachedTokens: 0 };
    await settle(first.ctx, first.state);
    const second = await admit(policy);
    assert.equal(await used(), 1000, 'the rest was given back and taken by the next request');
    second.ctx.usage = { inputTokens: PROMPT, outputTokens: 1000 - 2 * PROMPT - 12, cachedTokens: 0 };
    await settle(second.ctx, second.state);
    await refused('spent, nothing in flight: the window\'s end', '2400');
  });

  test("a refusal that only another replica's requests in flight cause says to retry in a moment too", async () => {
    const clock = new TestClock(MONDAY + 20 * 60_000);
    const name = unique('tq');
    const spec = { limit: 3000, timeUnit: 'hour' };
    // The same policy on two replicas sharing the counters.
    const here = llmTokenQuota(name, spec, testDeps(counters(), { now: clock.now }));
    const there = llmTokenQuota(name, spec, testDeps(await replica(), { now: clock.now }));
    const running = await admit(here, { body: { max_tokens: 2500 } });
    for (const [policy, where] of [[here, 'the replica running it'], [there, 'another replica']] as const) {
      await assert.rejects(async () => policy.admit!(fakeContext({ body: { max_tokens: 800 } }), {}), (err: unknown) => {
        assert.ok(isViolation(err));
        // Before: 2400 (the window's end) on every replica but the one running the request.
        assert.equal(err.headers['retry-after'], '1', where);
        assert.match(err.message, new RegExp(`${PROMPT + 2500} of them are held by requests in flight`), where);
        return true;
      });
    }
    running.ctx.attempts = 1;
    running.ctx.usage = { inputTokens: PROMPT, outputTokens: 20, cachedTokens: 0 };
    await settle(running.ctx, running.state);
    await admit(there, { body: { max_tokens: 800 } });
  });

  test("a cap of tollgate's choosing that would shrink to fit once requests in flight end: retry in a moment too", async () => {
    // Before: judged on the 4,096 first chosen, it was told the window's end (2400 s) and that it needed 4,096 + its prompt.
    const clock = new TestClock(MONDAY + 20 * 60_000);
    const { policy, used } = make({ limit: 5000, timeUnit: 'hour', defaultMaxTokens: 4096 }, clock);
    const spent = await admit(policy, { body: { max_tokens: 4000 - PROMPT } });
    spent.ctx.attempts = 1;
    spent.ctx.usage = { inputTokens: PROMPT, outputTokens: 4000 - PROMPT, cachedTokens: 0 };
    await settle(spent.ctx, spent.state);
    // Still running: holds the last 1,000.
    await admit(policy, { body: { max_tokens: 1000 - PROMPT } });
    assert.equal(await used(), 5000);
    await assert.rejects(async () => policy.admit!(fakeContext(), {}), (err: unknown) => {
      assert.ok(isViolation(err));
      assert.equal(err.headers['retry-after'], '1');
      assert.match(err.message, new RegExp(`this request needs at least ${PROMPT + 1}; 1000 of them are held by requests in flight`));
      return true;
    });
    await assert.rejects(async () => policy.admit!(fakeContext({ body: { max_tokens: 1500 } }), {}), (err: unknown) => {
      assert.ok(isViolation(err));
      assert.equal(err.headers['retry-after'], '2400', "a client's own cap does not shrink: the window's end");
      assert.match(err.message, new RegExp(`this request needs up to ${PROMPT + 1500}$`));
      return true;
    });
  });

  test('a request bigger than the whole quota is refused without retry-after, with the token headers', async () => {
    const clock = new TestClock(MONDAY + 20 * 60_000);
    const { policy, used } = make({ limit: 100, timeUnit: 'hour' }, clock);
    await admit(policy, { body: { max_tokens: 10 } });
    const ctx = fakeContext({ body: { max_tokens: 500 } });
    await assert.rejects(async () => policy.admit!(ctx, {}), (err: unknown) => {
      assert.ok(isViolation(err));
      assert.equal(err.headers['retry-after'], undefined);
      return true;
    });
    assert.equal(await used(), PROMPT + 10, 'the refused request reserved nothing');
    assert.deepEqual(
      [ctx.responseHeaders['x-ratelimit-limit-tokens'], ctx.responseHeaders['x-ratelimit-remaining-tokens'], ctx.responseHeaders['x-ratelimit-reset-tokens']],
      ['100', String(100 - PROMPT - 10), '40m0s'],
    );
  });

  test('useQuotaConfigInAPIProduct uses the operation set\'s llmTokenQuota per app', async () => {
    const clock = new TestClock(MONDAY);
    const setName = unique('tokens');
    const identity = new MemoryIdentitySource([
      { name: setName, spec: { apiProductRefs: [{ name: 'p' }], llmOperations: { llmTokenQuota: { limit: 500, interval: 1, timeUnit: 'hour', countOn: 'output' } } } },
      { name: unique('none'), spec: { apiProductRefs: [{ name: 'free' }] } },
    ]);
    const key = identity.add({ key: 'k', appId: unique('app'), products: ['p', 'free'] });
    const policy = llmTokenQuota(unique('product'), { useQuotaConfigInAPIProduct: true }, testDeps(counters(), { now: clock.now, identity }));
    const ctx = fakeContext({ body: { max_tokens: 200 } });
    await policy.admit!(ctx, { key, product: key.products[0], operationSet: key.products[0].operationSets[0] });
    assert.equal(await counters().get(windowKey(productKeys('pt', 'developer.app.id')(setName, key.appId), HOUR_OF_MONDAY), MONDAY), 200);
    assert.equal(ctx.responseHeaders['x-ratelimit-limit-tokens'], '500');
    const unlimited = fakeContext({ body: { max_tokens: 200 } });
    await policy.admit!(unlimited, { key, product: key.products[1], operationSet: key.products[1].operationSets[0] });
    assert.deepEqual(unlimited.responseHeaders, {}, 'a set without a token quota is not limited');
  });
});

test('a prompt over the limit is counted only as far as the limit, then refused (a 9 MB one took 1.7 s to count whole)', async () => {
  const policy = llmTokenQuota(unique('tq'), { limit: 1000, interval: 1, timeUnit: 'hour' }, testDeps(new MemoryCounterStore()));
  // Cut into 256-character pieces (no white space), and one piece of prose; short enough to be counted on this thread,
  // where countingTokens sees it (~13,000 tokens whole), as a long one is counted in the token-count thread, alike.
  for (const unit of ['a1!', 'lorem ipsum dolor sit amet, ']) {
    const content = unit.repeat(OFF_LOOP_CHARS / unit.length);
    const tokens = await countingTokens(() =>
      assert.rejects(async () => policy.admit!(fakeContext({ body: { messages: [{ role: 'user', content }], max_tokens: 1 } }), {}), (err: unknown) => {
        assert.ok(isViolation(err));
        assert.match(err.message, /needs more than 1000 tokens/);
        return true;
      }),
    );
    assert.ok(tokens <= 1100, `${tokens} tokens counted`);
  }
  // A prompt within the limit is counted exactly, as before.
  const state: ApimState = {};
  await policy.admit!(fakeContext({ body: { max_tokens: 1 } }), state);
  assert.equal(state.promptTokens, PROMPT);
});

describe('a long prompt', () => {
  after(() => closeTokenCountThread());
  // ~1 MB of prose, new to this process (not counted already); a 9 MB one held the event loop for 1.7 s.
  const content = `${'lorem ipsum dolor sit amet, '.repeat(40_000)}${unique('end')}`;
  const messages = [{ role: 'user', content }];

  test('is counted off the event loop: other requests are admitted meanwhile, and the count is the same', async () => {
    const policy = llmTokenQuota(unique('tq'), { limit: 10_000_000, interval: 1, timeUnit: 'hour' }, testDeps(new MemoryCounterStore()));
    const events: string[] = [];
    const state: ApimState = {};
    let admitted: Promise<void> | undefined;
    const counted = await countingTokens(async () => {
      admitted = Promise.resolve(policy.admit!(fakeContext({ body: { messages, max_tokens: 1 } }), state)).then(() => void events.push('long'));
    });
    // Counted on the event loop, admit would have returned only once the prompt was counted.
    assert.equal(counted, 0, 'no token of it counted on this thread');
    setImmediate(() => events.push('immediate'));
    await policy.admit!(fakeContext({ body: { max_tokens: 1 } }), {});
    events.push('short');
    await admitted;
    assert.deepEqual(events, ['short', 'immediate', 'long']);
    // The very count gpt-tokenizer gives the serialized prompt (prose: no run cut), plus the framing.
    assert.equal(state.promptTokens, countTokens(serializeMessages(messages)) + 3);
  });

  test("on output, leaves the room the pool's context length has after it, counted off the event loop", async () => {
    const policy = llmTokenQuota(unique('tq'), { limit: 10_000_000, interval: 1, timeUnit: 'hour', countOn: 'output' }, testDeps(new MemoryCounterStore()));
    const own = [{ role: 'user', content: `${content} ${unique('room')}` }];
    const exact = countTokens(serializeMessages(own)) + 3;
    const window = exact + 6000;
    const ctx = fakeContext({ body: { messages: own } });
    ctx.modelConfig = { pool: { name: 'p' } } as RequestContext['modelConfig'];
    ctx.fleet = { contextWindow: () => window };
    assert.equal(await countingTokens(() => Promise.resolve(policy.admit!(ctx, {}))), 0, 'no token of it counted on this thread');
    const room = window - exact - roomMargin(exact);
    assert.ok(room < 4096, 'the room, not the default cap, decides');
    assert.equal(ctx.body!.max_completion_tokens, room);
  });

  test('over the limit is refused as a short one is', async () => {
    const policy = llmTokenQuota(unique('tq'), { limit: 1000, interval: 1, timeUnit: 'hour' }, testDeps(new MemoryCounterStore()));
    const refused = Promise.resolve(policy.admit!(fakeContext({ body: { messages: [{ role: 'user', content: `${content} ${unique('x')}` }] } }), {}));
    await assert.rejects(refused, (err: unknown) => isViolation(err) && /needs more than 1000 tokens/.test(err.message));
  });
});
