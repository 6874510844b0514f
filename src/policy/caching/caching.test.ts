// The caches' shared parts: stores that outlive a reload, the request key and determinism rules, stream assembly
// and replay (content, tool calls, completions), what is stored for whom and the headers of a hit, prompt text and
// context digests.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../../store/counters/memory.js';
import { fakeContext, testDeps } from '../testing.js';
import { CacheResources } from './cache-resources.js';
import { canonicalJson } from './canonical-json.js';
import { answerAsStream, hitHeaders } from './cached-answer.js';
import { CacheStats } from './cache-stats.js';
import { clientDirectives } from './client-directives.js';
import { contextDigest, userPrompt } from './prompt-text.js';
import { isDeterministic, requestKey } from './request-key.js';
import { StreamAssembler, captureAnswer } from './stream-assembler.js';
import { ssePayloads } from './testing.js';
import type { ApimState, RespondStep } from '../types.js';

describe('CacheResources', () => {
  test('the same name and options give the same store back (a reload keeps the cache); other options a new one', async () => {
    const r = new CacheResources();
    // Each a flow of its own, as every reload compiles one.
    const by = () => ({ policy: 'p', flow: testDeps(new MemoryCounterStore()) });
    const a = r.answerStore(by(), 'x', 'memory', { maxBytes: 100, maxEntryBytes: 10 });
    assert.equal(r.answerStore(by(), 'x', 'memory', { maxBytes: 100, maxEntryBytes: 10 }), a);
    assert.notEqual(r.answerStore(by(), 'x', 'memory', { maxBytes: 200, maxEntryBytes: 10 }), a);
    const vectors = { maxEntriesPerScope: 5, embeddingsModel: 'e5' };
    assert.equal(r.vectorIndex(by(), 'x', 'memory', vectors), r.vectorIndex(by(), 'x', 'memory', vectors));
    assert.equal(r.stats('p'), r.stats('p'));
    await r.close();
  });
});

describe('request key', () => {
  test('canonical JSON sorts keys at every depth and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  });
  test('keys hash the requested and target model and the body without stream', () => {
    const a = fakeContext({ body: { temperature: 0, stream: true } });
    const b = fakeContext({ body: { temperature: 0 } });
    assert.equal(requestKey(a), requestKey(b));
    b.targetModel = 'llama-lora';
    assert.notEqual(requestKey(a), requestKey(b));
    assert.doesNotMatch(requestKey(a), /Hello/);
  });
  test('integers beyond 2^53 key on the digits the client wrote (before: one double, one key for three seeds)', () => {
    const keyOf = (seed: string) => {
      const raw = `{"model":"llama","temperature":0.8,"seed":${seed},"messages":[{"role":"user","content":"pick"}]}`;
      const ctx = fakeContext({ body: JSON.parse(raw) });
      ctx.rawBody = Buffer.from(raw);
      return requestKey(ctx);
    };
    const keys = ['4611686018427387904', '4611686018427387905', '4611686018427387906'].map(keyOf);
    assert.equal(new Set(keys).size, 3);
    assert.equal(keyOf('4611686018427387905'), keys[1]);
    assert.equal(keyOf('1234'), keyOf(' 1234'), 'a small seed keys as before, however it was spaced');
  });
  test('determinism: temperature 0, an integer seed, or embeddings', () => {
    assert.equal(isDeterministic(fakeContext({ body: { temperature: 0 } })), true);
    assert.equal(isDeterministic(fakeContext({ body: { seed: 3 } })), true);
    assert.equal(isDeterministic(fakeContext({ body: { temperature: 0.2 } })), false);
    assert.equal(isDeterministic(fakeContext()), false);
    assert.equal(isDeterministic(fakeContext({ operation: 'embeddings' })), true);
  });
});

describe('stream assembly and replay', () => {
  const head = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
  const ev = (choice: object, extra: object = {}) => JSON.stringify({ ...head, choices: [choice], ...extra });

  test('content, tool calls and usage come back as one answer, and replay as the same text', () => {
    const s = new StreamAssembler();
    s.push(ev({ index: 0, delta: { role: 'assistant', content: '' } }));
    s.push(ev({ index: 0, delta: { tool_calls: [{ index: 0, id: 't1', type: 'function', function: { name: 'get_', arguments: '{"ci' } }] } }));
    s.push(ev({ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'weather', arguments: 'ty":"Oslo"}' } }] } }));
    s.push(ev({ index: 0, delta: {}, finish_reason: 'tool_calls' }));
    s.push(JSON.stringify({ ...head, choices: [], usage: { total_tokens: 9 } }));
    s.push('[DONE]');
    const answer = JSON.parse(s.result()!.toString());
    assert.deepEqual(answer.choices[0].message.tool_calls, [{ id: 't1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
    assert.equal(answer.choices[0].finish_reason, 'tool_calls');
    assert.equal(answer.usage.total_tokens, 9);
    const replay = ssePayloads(answerAsStream(s.result()!, true)!).slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(replay[0].choices[0].delta, { role: 'assistant', content: '' }, 'the role alone first, as servers stream it');
    assert.equal(replay[1].choices[0].delta.tool_calls[0].function.arguments, '{"city":"Oslo"}');
    assert.equal(replay.at(-1).usage.total_tokens, 9);
  });

  test('the chunks\' logprobs come back whole in the answer (before: null)', () => {
    const s = new StreamAssembler();
    const lp = (token: string) => ({ content: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [] }] });
    s.push(ev({ index: 0, delta: { role: 'assistant', content: 'Hi' }, logprobs: lp('Hi') }));
    s.push(ev({ index: 0, delta: { content: '!' }, logprobs: lp('!'), finish_reason: 'stop' }));
    s.push('[DONE]');
    const answer = JSON.parse(s.result()!.toString());
    assert.deepEqual(answer.choices[0].logprobs.content.map((t: { token: string }) => t.token), ['Hi', '!']);
    // ... and a replay to a streaming client carries them on the chunk that carries the content (before: null), not on
    // the first one: the openai SDK's stream helper counts a first chunk's logprobs twice.
    const replay = ssePayloads(answerAsStream(s.result()!, false)!).slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(replay.map((r) => r.choices[0].logprobs?.content?.map((t: { token: string }) => t.token) ?? null), [null, ['Hi', '!'], null]);
    const plain = new StreamAssembler();
    plain.push(ev({ index: 0, delta: { content: 'x' }, finish_reason: 'stop' }));
    plain.push('[DONE]');
    assert.equal(JSON.parse(plain.result()!.toString()).choices[0].logprobs, null);
  });

  test("a reasoning server's reasoning_content is kept, and replayed before the content (before: dropped both ways)", () => {
    const s = new StreamAssembler();
    s.push(ev({ index: 0, delta: { role: 'assistant', reasoning_content: 'think ' } }));
    s.push(ev({ index: 0, delta: { reasoning_content: 'hard' } }));
    s.push(ev({ index: 0, delta: { content: 'answer' }, finish_reason: 'stop' }));
    s.push('[DONE]');
    const answer = JSON.parse(s.result()!.toString());
    assert.deepEqual(answer.choices[0].message, { role: 'assistant', reasoning_content: 'think hard', content: 'answer' });
    const replay = ssePayloads(answerAsStream(s.result()!, false)!).slice(0, -1).map((e) => JSON.parse(e).choices[0].delta);
    assert.deepEqual(replay, [{ role: 'assistant', content: '' }, { reasoning_content: 'think hard' }, { content: 'answer' }, {}]);
  });

  test('completions streams assemble to text_completion', () => {
    const s = new StreamAssembler();
    for (const t of ['Hel', 'lo']) s.push(JSON.stringify({ id: 'x', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text: t, finish_reason: null }] }));
    s.push(JSON.stringify({ id: 'x', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text: '', finish_reason: 'length' }] }));
    const answer = JSON.parse(s.result()!.toString());
    assert.equal(answer.object, 'text_completion');
    assert.equal(answer.choices[0].text, 'Hello');
    assert.equal(ssePayloads(answerAsStream(s.result()!, false)!).length, 3);
  });

  test('a stream whose answer outgrows the limit is let go while it streams (before: all of it held to the end)', () => {
    const top = Array.from({ length: 20 }, (_, i) => ({ token: `t${i}`, logprob: -1, bytes: [116] }));
    const chunk = (t: string) => ev({ index: 0, delta: { content: t }, logprobs: { content: [{ token: t, logprob: -0.1, bytes: [116], top_logprobs: top }] } });
    const s = new StreamAssembler(10_000);
    // 20 chunks of about 900 bytes each; once past the limit nothing is kept to rebuild an answer from, finished or not.
    for (let i = 0; i < 20; i++) s.push(chunk('t'));
    s.push(ev({ index: 0, delta: {}, finish_reason: 'stop' }));
    s.push('[DONE]');
    assert.equal(s.result(), undefined);
    const under = new StreamAssembler(10_000);
    for (let i = 0; i < 5; i++) under.push(chunk('t'));
    under.push(ev({ index: 0, delta: {}, finish_reason: 'stop' }));
    assert.ok(under.result()!.length <= 10_000);
  });

  test('the limit counts the answer, not the events: a long plain answer whose events add up past it still assembles', () => {
    const s = new StreamAssembler(20_000);
    let events = 0;
    for (let i = 0; i < 1000; i++) {
      const e = ev({ index: 0, delta: { content: 'word ' }, logprobs: null, finish_reason: null });
      events += e.length;
      s.push(e);
    }
    s.push(ev({ index: 0, delta: {}, finish_reason: 'stop' }));
    assert.ok(events > 20_000, `${events}`);
    assert.equal(JSON.parse(s.result()!.toString()).choices[0].message.content.length, 5000);
  });

  test('an unfinished, broken or foreign stream yields nothing', () => {
    const unfinished = new StreamAssembler();
    unfinished.push(ev({ index: 0, delta: { content: 'x' } }));
    assert.equal(unfinished.result(), undefined);
    const broken = new StreamAssembler();
    broken.push('not json');
    assert.equal(broken.result(), undefined);
    const foreign = new StreamAssembler();
    foreign.push(JSON.stringify({ type: 'response.output_text.delta', delta: 'x' }));
    assert.equal(foreign.result(), undefined);
    assert.equal(answerAsStream(Buffer.from('{"object":"list","data":[]}'), false), undefined);
  });
});

describe('answers for the other requests of a scope', () => {
  test('an answer rewritten for one request, or left unjudged, is not stored where other requests would get it; counted', () => {
    const answer = JSON.stringify({ id: 'c', object: 'chat.completion', choices: [] });
    const capture = (cacheScope: 'app' | 'product' | 'global', state: ApimState) => {
      const stats = new CacheStats();
      let stored: Buffer | undefined;
      const flow = captureAnswer(false, { maxEntryBytes: 1000, cacheScope, stats }, state, (a) => void (stored = a));
      flow.headers!(200, { 'content-type': 'application/json' });
      void flow.body!(Buffer.from(answer), 200);
      return { stored: stored?.toString(), notReplayable: stats.notReplayable };
    };
    assert.deepEqual(capture('app', { answerSharedWithin: 'app' }), { stored: answer, notReplayable: 0 });
    assert.deepEqual(capture('product', { answerSharedWithin: 'app' }), { stored: undefined, notReplayable: 1 });
    assert.deepEqual(capture('product', { answerSharedWithin: 'product' }), { stored: answer, notReplayable: 0 });
    assert.deepEqual(capture('global', { answerSharedWithin: 'product' }), { stored: undefined, notReplayable: 1 });
    assert.deepEqual(capture('app', { answerUnjudged: true }), { stored: undefined, notReplayable: 1 });
  });

  test('a hit gets the header changes of its request\'s response flow, over the headers the policies set for it', () => {
    const step: RespondStep = () => ({
      headers: (_status, out) => {
        out['x-app'] = 'dev@example.com';
        delete out['x-ratelimit-limit-requests'];
      },
    });
    const ctx = fakeContext();
    ctx.responseHeaders['x-ratelimit-limit-requests'] = '10';
    ctx.responseHeaders['x-ratelimit-remaining-requests'] = '9';
    const apply = hitHeaders([step]);
    void apply(ctx, {});
    assert.equal(ctx.responseHeaders['x-ratelimit-limit-requests'], '10', 'no hit, no change');
    ctx.directResponse = { status: 200, headers: { 'content-type': 'application/json', 'x-cache': 'HIT' }, body: '{}' };
    ctx.cacheHit = true;
    void apply(ctx, {});
    assert.deepEqual(ctx.directResponse.headers, { 'content-type': 'application/json', 'x-cache': 'HIT', 'x-app': 'dev@example.com', 'x-ratelimit-remaining-requests': '9' });
    // A header the flow removed stays removed when the answer is sent (which adds the policies' headers it lacks).
    assert.equal(ctx.responseHeaders['x-ratelimit-limit-requests'], undefined);
  });
});

describe('client Cache-Control (RFC 9111 §5.2: case-insensitive, comma-separated directives)', () => {
  const NONE = { lookup: true, store: true };
  const NO_LOOKUP = { lookup: false, store: true };
  const NO_STORE = { lookup: false, store: false };
  for (const [header, expected] of [
    ['no-store', NO_STORE],
    ['NO-STORE', NO_STORE],
    ['private, No-Store', NO_STORE],
    ['no-cache', NO_LOOKUP],
    ['No-Cache', NO_LOOKUP],
    ['max-age=0', NO_LOOKUP],
    ['Max-Age="0", no-transform', NO_LOOKUP],
    ['no-cache, no-store', NO_STORE],
    ['max-age=60', NONE],
    ['max-age=', NONE],
    ['x-no-store-please, no-cache-later', NONE],
    ['no-transform', NONE],
  ] as const) {
    test(`${JSON.stringify(header)}`, () => assert.deepEqual(clientDirectives(fakeContext({ headers: { 'cache-control': header } })), expected));
  }
});

describe('prompt text', () => {
  const body = {
    model: 'm',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: [{ type: 'text', text: 'second' }, { type: 'text', text: 'part' }] },
    ],
  };
  test('last user message or all of them; completions prompts', () => {
    assert.equal(userPrompt(body, 'lastUserMessage'), 'second\npart');
    assert.equal(userPrompt(body, 'userMessages'), 'first\nsecond\npart');
    assert.equal(userPrompt({ model: 'm', prompt: 'hi' }, 'lastUserMessage'), 'hi');
    assert.equal(userPrompt({ model: 'm', messages: [{ role: 'user', content: '' }] }, 'lastUserMessage'), undefined);
  });
  test('the context digest changes with the system prompt but not with the last user message', () => {
    const other = structuredClone(body);
    other.messages[3].content = 'different question';
    assert.equal(contextDigest(body, 'lastUserMessage'), contextDigest(other, 'lastUserMessage'));
    other.messages[0].content = 'Be verbose.';
    assert.notEqual(contextDigest(body, 'lastUserMessage'), contextDigest(other, 'lastUserMessage'));
  });
});
