import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from './http-io.js';
import { embeddingJob, generationJob, type Catalog, type GenerationEndpoint } from './jobs.js';

const CATALOG: Catalog = { models: ['base', 'alias'], loras: ['sql'], maxModelLen: 1000, maxOutputTokens: 200, seed: 0 };
const user = [{ role: 'user', content: 'hello there' }];

/** The HttpError a request body is refused with. */
function refusal(endpoint: GenerationEndpoint | 'embeddings', body: object): HttpError {
  try {
    if (endpoint === 'embeddings') embeddingJob(body, CATALOG);
    else generationJob(endpoint, body, CATALOG);
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return err;
  }
  assert.fail(`accepted: ${JSON.stringify(body).slice(0, 200)}`);
}

const usageOf = (job: ReturnType<typeof generationJob>) => job.format.close({ promptTokens: 1, completionTokens: 1, cachedTokens: 0 }).includes('"usage":{');

describe("request checks as vLLM's", () => {
  test('stream_options without stream is a 400 (an empty object counts as none, as in Python); {} with stream includes usage', () => {
    const chat = { model: 'base', messages: user, max_tokens: 2 };
    const e = refusal('chat', { ...chat, stream_options: { include_usage: true } });
    assert.deepEqual([e.status, e.param, e.message], [400, 'stream_options', 'Stream options can only be defined when `stream=True`.']);
    assert.equal(refusal('completions', { model: 'base', prompt: 'hi', stream: false, stream_options: { include_usage: false } }).param, 'stream_options');
    generationJob('chat', { ...chat, stream_options: {} }, CATALOG);
    generationJob('chat', { ...chat, stream_options: null }, CATALOG);

    // include_usage defaults to true in vLLM's StreamOptions; null or false leaves usage out.
    assert.equal(usageOf(generationJob('chat', { ...chat, stream: true, stream_options: {} }, CATALOG)), true);
    assert.equal(usageOf(generationJob('chat', { ...chat, stream: true, stream_options: { include_usage: null } }, CATALOG)), false);
    assert.equal(usageOf(generationJob('chat', { ...chat, stream: true }, CATALOG)), false);
  });

  test('the common sampling fields are checked: type and bounds, as SamplingParams checks them', () => {
    const cases: [GenerationEndpoint, object, string, RegExp][] = [
      ['chat', { temperature: 'hot' }, 'temperature', /expected number/],
      ['chat', { temperature: -1 }, 'temperature', /^temperature must be in \[0, 2\], got -1\.$/],
      ['completions', { temperature: 2.5 }, 'temperature', /^temperature must be in \[0, 2\], got 2\.5\.$/],
      ['responses', { temperature: -0.5 }, 'temperature', /^temperature must be in/],
      ['chat', { top_p: 0 }, 'top_p', /^top_p must be in \(0, 1\], got 0\.$/],
      ['responses', { top_p: 1.5 }, 'top_p', /^top_p must be in/],
      ['chat', { presence_penalty: 3 }, 'presence_penalty', /^presence_penalty must be in \[-2, 2\]/],
      ['completions', { frequency_penalty: -2.5 }, 'frequency_penalty', /^frequency_penalty must be in \[-2, 2\]/],
      ['chat', { logit_bias: { word: 1 } }, 'logit_bias', /cannot be converted to integer token IDs/],
      ['chat', { logit_bias: { 42: 'up' } }, 'logit_bias', /expected number/],
    ];
    const base = { chat: { model: 'base', messages: user }, completions: { model: 'base', prompt: 'hi' }, responses: { model: 'base', input: 'hi' } };
    for (const [endpoint, fields, param, message] of cases) {
      const e = refusal(endpoint, { ...base[endpoint], ...fields });
      assert.deepEqual([e.status, e.param], [400, param], JSON.stringify(fields));
      assert.match(e.message, message);
    }
    const fine = { temperature: 0, top_p: 1, presence_penalty: -2, frequency_penalty: 2, logit_bias: { '50256': -100 } };
    for (const endpoint of ['chat', 'completions'] as const) generationJob(endpoint, { ...base[endpoint], ...fine }, CATALOG);
  });

  test('a request without model is served by the base model, as vLLM serves it', () => {
    assert.equal(generationJob('chat', { messages: user, max_tokens: 2 }, CATALOG).model, 'base');
    assert.equal(generationJob('responses', { input: 'hi' }, CATALOG).model, 'base');
    assert.equal(embeddingJob({ input: 'hi' }, CATALOG).model, 'base');
    assert.equal(refusal('chat', { model: 'nope', messages: user }).param, 'model');
  });

  test("the Responses API's max_output_tokens is cut to the room the context leaves; chat's max_tokens past it is a 400", () => {
    const job = generationJob('responses', { model: 'base', input: 'hi', max_output_tokens: 100_000, ignore_eos: true }, CATALOG);
    assert.equal(job.completionTokens, CATALOG.maxModelLen - job.prompt.count);
    const e = refusal('chat', { model: 'base', messages: user, max_tokens: 100_000 });
    assert.equal(e.param, 'max_tokens');
    assert.match(e.message, /^'max_tokens' or 'max_completion_tokens' is too large: 100000\. This model's maximum context length is 1000 tokens/);
  });

  test('Responses input [] with tools is a 400 (it was a TypeError, a 500)', () => {
    const e = refusal('responses', { model: 'base', input: [], tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }] });
    assert.deepEqual([e.status, e.message], [400, 'The decoder prompt cannot be empty']);
  });

  test('a prompt far past the context is refused after reading a budget of it, not counted whole', () => {
    // Decided on its first ~12,000 characters, and by its length alone.
    for (const big of ['lorem ipsum dolor sit amet '.repeat(8_000), 'lorem ipsum dolor sit amet '.repeat(40_000)]) {
      for (const [endpoint, body] of [
        ['chat', { model: 'base', messages: [{ role: 'user', content: big }] }],
        ['completions', { model: 'base', prompt: big }],
        ['responses', { model: 'base', input: big }],
        ['embeddings', { model: 'base', input: big }],
      ] as const) {
        const e = refusal(endpoint, body);
        assert.equal(e.param, 'input_tokens', endpoint);
        // Counted whole, vLLM's sentence would give the prompt's 40,000 or 200,000 tokens.
        assert.match(e.message, /^This model's maximum context length is 1000 tokens\. However, (your request has|you requested) more than 1000 /, endpoint);
      }
    }
    // Token ids past the context are not each looked up in the vocabulary first.
    const ids = [...Array.from({ length: 5000 }, (_, i) => i), 999_999_999];
    assert.equal(refusal('completions', { model: 'base', prompt: ids }).param, 'input_tokens');
    // Just past it, the count is exact.
    const e = refusal('completions', { model: 'base', prompt: Array.from({ length: 1000 }, (_, i) => i + 10) });
    assert.match(e.message, /your request has 1000 input tokens/);
  });
});

describe('the prompt a chat request holds in the KV cache', () => {
  const tools = [{ type: 'function', function: { name: 'lookup', description: 'Looks a record up by its key, '.repeat(8), parameters: { type: 'object' } } }];
  const blocksShared = (a: number[], b: number[]) => {
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return n;
  };

  test("its blocks are those of the layout the gateway's prefix scorer hashes: tools first, then messages framed", () => {
    const job = (body: object) => generationJob('chat', { model: 'base', max_tokens: 2, ...body }, CATALOG);
    const withTools = job({ tools, tool_choice: 'none', messages: [{ role: 'user', content: 'a' }] });
    const sameTools = job({ tools, tool_choice: 'none', messages: [{ role: 'user', content: 'b' }] });
    // Before: no block at all (the short messages alone were hashed), nothing shared.
    assert.ok(blocksShared(withTools.blockHashes, sameTools.blockHashes) >= 5);
    const bare = job({ messages: [{ role: 'user', content: 'a' }] });
    // The tool definitions are prompt tokens, as a model server's template counts them.
    assert.ok(withTools.prompt.count > bare.prompt.count + 50);
    const one = job({ messages: [{ role: 'system', content: `S\nuser: ${'x '.repeat(40)}` }] });
    const two = job({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'x '.repeat(40) }] });
    assert.equal(blocksShared(one.blockHashes, two.blockHashes), 0);
  });
});
