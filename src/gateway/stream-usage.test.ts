// Whether a streaming client asked for usage, in the dialect of the engine its request goes to, and what tollgate then
// changes to get usage for its own accounting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig, PoolConfig, RouteBackend } from '../config/runtime-config.js';
import { fakeContext } from '../policy/testing.js';
import type { OpenAIBody } from './openai-request.js';
import { requestStreamUsage, streamUsageAsked } from './stream-usage.js';

type Upstream = PoolConfig['engine'] | 'url' | 'none';

function streamed(upstream: Upstream, streamOptions: OpenAIBody['stream_options'] | 'absent') {
  const ctx = fakeContext({ body: { stream: true, ...(streamOptions !== 'absent' && { stream_options: streamOptions }) } });
  const pool = (engine: PoolConfig['engine']) => ({ name: 'pool', endpoints: [], engine }) as PoolConfig;
  if (upstream === 'url') {
    // An HTTPRoute to a URL, for a model that also has a vLLM pool: the route decides where it goes.
    ctx.modelConfig = { name: 'llama', pool: pool('vllm') } as ModelConfig;
    ctx.backend = { kind: 'url', url: 'https://api.openai.com', address: 'api.openai.com:443' } satisfies RouteBackend;
  } else if (upstream !== 'none') ctx.modelConfig = { name: 'llama', pool: pool(upstream) } as ModelConfig;
  return ctx;
}

const CASES: { upstream: Upstream; options: OpenAIBody['stream_options'] | 'absent'; asked: boolean }[] = [
  // OpenAI's reading everywhere: only include_usage: true asks.
  { upstream: 'vllm', options: { include_usage: true }, asked: true },
  { upstream: 'sglang', options: { include_usage: true }, asked: true },
  { upstream: 'url', options: { include_usage: true }, asked: true },
  { upstream: 'vllm', options: 'absent', asked: false },
  { upstream: 'vllm', options: null, asked: false },
  { upstream: 'vllm', options: { include_usage: false }, asked: false },
  // vLLM reads null as false (`stream_options.include_usage or ...`).
  { upstream: 'vllm', options: { include_usage: null }, asked: false },
  // vLLM's and TensorRT-LLM's StreamOptions default include_usage to true.
  { upstream: 'vllm', options: {}, asked: true },
  { upstream: 'trtllm', options: {}, asked: true },
  { upstream: 'vllm', options: { continuous_usage_stats: false } as OpenAIBody['stream_options'], asked: true },
  // SGLang's defaults it to false, as OpenAI does; a URL backend may be OpenAI itself; no model resolved yet: unknown.
  { upstream: 'sglang', options: {}, asked: false },
  { upstream: 'url', options: {}, asked: false },
  { upstream: 'none', options: {}, asked: false },
];

for (const c of CASES) {
  test(`stream_options ${c.options === 'absent' ? 'absent' : JSON.stringify(c.options)} to ${c.upstream}: ${c.asked ? 'asked' : 'not asked'}`, () => {
    const ctx = streamed(c.upstream, c.options);
    assert.equal(streamUsageAsked(ctx), c.asked);
    const before = JSON.stringify(ctx.body);
    requestStreamUsage(ctx);
    if (c.asked) {
      assert.equal(JSON.stringify(ctx.body), before, 'the request goes as the client wrote it');
      assert.equal(ctx.bodyChanged, false);
      assert.equal(ctx.stripStreamUsage, undefined, 'the client gets its usage chunk');
    } else {
      assert.equal(ctx.body!.stream_options?.include_usage, true, 'asked upstream for tollgate');
      assert.equal(ctx.bodyChanged, true);
      assert.equal(ctx.stripStreamUsage, true, 'and dropped for the client');
    }
  });
}

test('requestStreamUsage is idempotent and leaves non-streamed and Responses requests alone', () => {
  const ctx = streamed('sglang', {});
  requestStreamUsage(ctx);
  requestStreamUsage(ctx);
  assert.deepEqual(ctx.body!.stream_options, { include_usage: true });
  assert.equal(ctx.stripStreamUsage, true);
  const plain = fakeContext();
  requestStreamUsage(plain);
  assert.equal(plain.body!.stream_options, undefined);
  const responses = fakeContext({ operation: 'responses', body: { stream: true } });
  requestStreamUsage(responses);
  assert.equal(responses.body!.stream_options, undefined);
});
