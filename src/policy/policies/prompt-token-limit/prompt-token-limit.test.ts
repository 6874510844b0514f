// PromptTokenLimit: prompt tokens per second or minute, smoothed; oversized prompts; identifiers — on every backend.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens } from 'gpt-tokenizer';
import { GatewayError } from '../../../gateway/errors.js';
import { closeTokenCountThread } from '../../../lib/token-count-thread.js';
import { countChatTokens, serializeMessages } from '../../../lib/tokenizer.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { describeOnCounterBackends } from '../../../store/counters/test-counter-stores.js';
import { MONDAY, TestClock, countingTokens, fakeContext, testDeps, unique, type FakeRequest } from '../../testing.js';
import type { Policy } from '../../types.js';
import { PROMPT_TOKEN_LIMIT_FAULTS, promptTokenLimit } from './prompt-token-limit.js';

/** A user message of `n` prompt tokens by the shared tokenizer. */
function promptOf(n: number): FakeRequest {
  const content = Array.from({ length: n }, () => ' hello').join('');
  const messages = [{ role: 'user', content }];
  const tokens = countChatTokens(messages);
  assert.ok(tokens > n, 'framing adds a few tokens');
  return { body: { messages } };
}
const TOKENS_OF = (req: FakeRequest) => countChatTokens(req.body!.messages!);

async function allowed(policy: Policy, req: FakeRequest): Promise<boolean> {
  try {
    await policy.admit!(fakeContext(req), {});
    return true;
  } catch (err) {
    if (err instanceof GatewayError && err.status === 429 && err.code === PROMPT_TOKEN_LIMIT_FAULTS.promptTokenLimitViolation) return false;
    throw err;
  }
}

describe('config', () => {
  const deps = testDeps(new MemoryCounterStore());
  test('a rate is required and has the SpikeArrest shape', () => {
    assert.throws(() => promptTokenLimit('p', {}, deps), /rate/);
    assert.throws(() => promptTokenLimit('p', { rate: '1000 per minute' }, deps), /count per second or minute/);
  });
  test('an unknown identifier is refused', () => {
    assert.throws(() => promptTokenLimit('p', { rate: '100ps', identifier: { ref: 'tenant' } }, deps), /unknown variable "tenant"/);
  });
});

describeOnCounterBackends((counters) => {

  const make = (spec: Record<string, unknown>, clock: TestClock) => promptTokenLimit(unique('ptl'), spec, testDeps(counters(), { now: clock.now }));

  test('a period\'s tokens may come at once, then they refill at the rate', async () => {
    const clock = new TestClock(MONDAY);
    const req = promptOf(40);
    const n = TOKENS_OF(req);
    // Two prompts' worth a second: a prompt refills in 500 ms.
    const policy = make({ rate: `${2 * n}ps` }, clock);
    assert.equal(await allowed(policy, req), true);
    assert.equal(await allowed(policy, req), true);
    assert.equal(await allowed(policy, req), false);
    clock.advance(499);
    assert.equal(await allowed(policy, req), false, 'not quite refilled');
    clock.advance(1);
    assert.equal(await allowed(policy, req), true);
  });

  test('a refusal is 429 with retry-after', async () => {
    const clock = new TestClock(MONDAY);
    const req = promptOf(20);
    const policy = make({ rate: `${TOKENS_OF(req)}pm` }, clock);
    await policy.admit!(fakeContext(req), {});
    clock.advance(20_000);
    await assert.rejects(Promise.resolve(policy.admit!(fakeContext(req), {})), (err: GatewayError) => {
      assert.equal(err.code, PROMPT_TOKEN_LIMIT_FAULTS.promptTokenLimitViolation);
      assert.equal(err.headers['retry-after'], '40');
      return true;
    });
  });

  test('a prompt larger than the whole rate is refused without retry-after', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '10pm' }, clock);
    await assert.rejects(Promise.resolve(policy.admit!(fakeContext(promptOf(20)), {})), (err: GatewayError) => {
      assert.equal(err.status, 429);
      assert.equal(err.headers['retry-after'], undefined);
      assert.equal(err.headers['x-should-retry'], 'false', 'the OpenAI SDKs retry a 429 without it');
      assert.match(err.message, /more than 10 tokens; the limit is 10pm tokens/);
      return true;
    });
  });

  test('each identifier value has its own allowance', async () => {
    const clock = new TestClock(MONDAY);
    const req = promptOf(10);
    const policy = make({ rate: `${TOKENS_OF(req)}pm`, identifier: { ref: 'request.header.x-tenant' } }, clock);
    assert.equal(await allowed(policy, { ...req, headers: { 'x-tenant': 'a' } }), true);
    assert.equal(await allowed(policy, { ...req, headers: { 'x-tenant': 'b' } }), true);
    assert.equal(await allowed(policy, { ...req, headers: { 'x-tenant': 'a' } }), false);
  });

  test('a request without a prompt is not counted', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '1ps' }, clock);
    const ctx = fakeContext();
    ctx.body = undefined;
    await policy.admit!(ctx, {});
    await policy.admit!(ctx, {});
  });
});

describe('a long prompt', () => {
  after(() => closeTokenCountThread());

  test('is counted off the event loop, to the same count', async () => {
    // ~280 KB of prose, new to this process (not counted already).
    const messages = [{ role: 'user', content: `${'lorem ipsum dolor sit amet, '.repeat(10_000)}${unique('end')}` }];
    // The very count gpt-tokenizer gives the serialized prompt (prose: no run cut), plus the framing.
    const exact = countTokens(serializeMessages(messages)) + 3;
    const policy = promptTokenLimit(unique('ptl'), { rate: `${exact}pm` }, testDeps(new MemoryCounterStore(), { now: new TestClock(MONDAY).now }));
    let passed: boolean | undefined;
    assert.equal(await countingTokens(async () => void (passed = await allowed(policy, { body: { messages } }))), 0, 'no token of it counted on this thread');
    assert.equal(passed, true, 'no more than the whole rate');
    assert.equal(await allowed(policy, promptOf(1)), false, 'the whole rate taken');
  });
});
