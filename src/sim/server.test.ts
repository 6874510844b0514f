import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countChatTokens, countTextTokens } from '../lib/tokenizer.js';
import { cosineSimilarity } from './embeddings.js';
import { decodeStepSeconds, prefillSeconds } from './latency-model.js';
import { startSimServer, type SimServer } from './server.js';
import { postJson, sampleValue, scrape, sseData, waitFor, type Sample } from './testing.js';

const MODEL = 'sim-model';

/** A long prompt (~6000 tokens) whose text depends on `tag`. */
function longPrompt(tag: string): string {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
  let out = `${tag}:`;
  for (let i = 0; i < 3000; i++) out += ` ${words[(i * 7 + tag.length) % words.length]}${i % 10}`;
  return out;
}

/** Milliseconds until the first content chunk of a streamed chat request, and its final usage. */
async function streamTtft(url: string, content: string, maxTokens = 2): Promise<{ ttft: number; usage: any }> {
  const start = performance.now();
  const res = await postJson(`${url}/v1/chat/completions`, {
    model: MODEL,
    messages: [{ role: 'user', content }],
    max_tokens: maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  let ttft = -1;
  let usage: any;
  for await (const data of sseData(res)) {
    if (data === '[DONE]') break;
    const chunk = JSON.parse(data);
    if (ttft < 0 && chunk.choices[0]?.delta?.content) ttft = performance.now() - start;
    if (chunk.usage) usage = chunk.usage;
  }
  return { ttft, usage };
}

describe('sim server: OpenAI surface', () => {
  let sim: SimServer;
  before(async () => {
    sim = await startSimServer({ model: MODEL, loras: ['sql-lora', 'tone-lora'], timeScale: 50 });
  });
  after(() => sim.close());

  test('chat completion: OpenAI shape, usage counted like the gateway counts it', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: [{ type: 'text', text: 'Say hello to the world.' }] },
    ];
    const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages, max_tokens: 12 });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, MODEL);
    assert.equal(body.choices[0].message.role, 'assistant');
    assert.equal(body.choices[0].finish_reason, 'length');
    assert.equal(body.usage.prompt_tokens, countChatTokens(messages));
    assert.equal(body.usage.completion_tokens, 12);
    assert.equal(countTextTokens(body.choices[0].message.content), 12);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + 12);
    assert.equal(typeof body.usage.prompt_tokens_details.cached_tokens, 'number');
  });

  test('same prompt and seed, same answer; no max_tokens draws a length and stops', async () => {
    const req = { model: MODEL, messages: [{ role: 'user', content: 'Tell me a story about a lighthouse.' }] };
    const a = await (await postJson(`${sim.url}/v1/chat/completions`, req)).json();
    const b = await (await postJson(`${sim.url}/v1/chat/completions`, req)).json();
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.equal(a.choices[0].finish_reason, 'stop');
    assert.ok(a.usage.completion_tokens >= 1 && a.usage.completion_tokens <= 1024);
    const c = await (await postJson(`${sim.url}/v1/chat/completions`, { ...req, seed: 7 })).json();
    assert.notEqual(c.choices[0].message.content, a.choices[0].message.content);
    // A 64-bit seed, as vLLM takes it; a fraction is not a seed.
    const wide = await postJson(`${sim.url}/v1/chat/completions`, { ...req, seed: 2 ** 62, max_tokens: 4 });
    assert.equal(wide.status, 200);
    await wide.body?.cancel();
    assert.equal((await postJson(`${sim.url}/v1/chat/completions`, { ...req, seed: 1.5 })).status, 400);
  });

  test('max_tokens is a cap: the answer ends at its natural length under it; ignore_eos runs to it; min_tokens lengthens', async () => {
    const req = { model: MODEL, messages: [{ role: 'user', content: 'Tell me a story about a lighthouse.' }] };
    const natural = (await (await postJson(`${sim.url}/v1/chat/completions`, req)).json()).usage.completion_tokens;
    const capped = await (await postJson(`${sim.url}/v1/chat/completions`, { ...req, max_tokens: natural + 500 })).json();
    assert.equal(capped.usage.completion_tokens, natural);
    assert.equal(capped.choices[0].finish_reason, 'stop');
    const exact = await (await postJson(`${sim.url}/v1/chat/completions`, { ...req, max_tokens: natural + 500, ignore_eos: true })).json();
    assert.equal(exact.usage.completion_tokens, natural + 500);
    assert.equal(exact.choices[0].finish_reason, 'length');
    const longer = await (await postJson(`${sim.url}/v1/chat/completions`, { ...req, max_tokens: natural + 500, min_tokens: natural + 20 })).json();
    assert.equal(longer.usage.completion_tokens, natural + 20);
    assert.equal(longer.choices[0].finish_reason, 'stop');
  });

  test('streamed chat: role first, one chunk per token, finish, usage chunk with empty choices, [DONE]', async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, {
      model: 'sql-lora',
      messages: [{ role: 'user', content: 'hi' }],
      max_completion_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    const events = [];
    for await (const data of sseData(res)) events.push(data);
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    const content = chunks.filter((c) => c.choices[0]?.delta?.content);
    assert.equal(content.length, 5);
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, {
      prompt_tokens: countChatTokens([{ role: 'user', content: 'hi' }]),
      completion_tokens: 5,
      total_tokens: countChatTokens([{ role: 'user', content: 'hi' }]) + 5,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    assert.ok(chunks.every((c) => c.model === 'sql-lora'));
  });

  test('streamed chat without include_usage has no usage chunk', async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      stream: true,
    });
    const events = [];
    for await (const data of sseData(res)) events.push(data);
    assert.ok(events.slice(0, -1).every((e) => !('usage' in JSON.parse(e))));
  });

  test('completions, streamed and not', async () => {
    const res = await postJson(`${sim.url}/v1/completions`, { model: MODEL, prompt: 'Once upon a time', max_tokens: 4 });
    const body = await res.json();
    assert.equal(body.object, 'text_completion');
    assert.equal(body.usage.prompt_tokens, countTextTokens('Once upon a time'));
    assert.equal(body.usage.completion_tokens, 4);
    assert.equal(typeof body.choices[0].text, 'string');

    const streamed = await postJson(`${sim.url}/v1/completions`, {
      model: MODEL,
      prompt: [1, 2, 3],
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = [];
    for await (const data of sseData(streamed)) events.push(data);
    const usage = JSON.parse(events.at(-2)!).usage;
    assert.equal(usage.prompt_tokens, 3);
    assert.equal(events.slice(0, -1).filter((e) => JSON.parse(e).choices[0]?.text).length, 3);
  });

  test('responses API: output text and usage; streamed events end in response.completed', async () => {
    const res = await postJson(`${sim.url}/v1/responses`, { model: MODEL, input: 'Write a haiku', instructions: 'Be brief' });
    const body = await res.json();
    assert.equal(body.object, 'response');
    assert.equal(body.status, 'completed');
    assert.equal(body.output[0].type, 'message');
    const text = body.output[0].content[0].text;
    assert.equal(body.output[0].content[0].type, 'output_text');
    assert.equal(body.usage.output_tokens, countTextTokens(text));
    assert.equal(
      body.usage.input_tokens,
      countChatTokens([
        { role: 'system', content: 'Be brief' },
        { role: 'user', content: 'Write a haiku' },
      ]),
    );

    const streamed = await postJson(`${sim.url}/v1/responses`, {
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Write a haiku' }] }],
      stream: true,
    });
    const events = [];
    for await (const data of sseData(streamed)) events.push(JSON.parse(data));
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
    const done = events.at(-1).response;
    assert.equal(deltas.join(''), done.output[0].content[0].text);
    assert.equal(done.usage.output_tokens, deltas.length);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
  });

  test('responses API with max_output_tokens reached reports incomplete', async () => {
    const res = await postJson(`${sim.url}/v1/responses`, { model: MODEL, input: 'x', max_output_tokens: 3 });
    const body = await res.json();
    assert.equal(body.status, 'incomplete');
    assert.equal(body.incomplete_details.reason, 'max_output_tokens');
    assert.equal(body.usage.output_tokens, 3);
  });

  const weather = {
    type: 'function',
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'] },
  };
  const clock = { type: 'function', name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } } } };
  const responses = async (body: Record<string, unknown>) => (await postJson(`${sim.url}/v1/responses`, { model: MODEL, ...body })).json();

  test('responses API with tools: a function_call item whose arguments follow the schema, the same for the same request', async () => {
    const ask = { input: 'Weather in Paris?', tools: [weather, clock], tool_choice: { type: 'function', name: 'get_weather' } };
    const body = await responses(ask);
    assert.equal(body.status, 'completed');
    assert.equal(body.output.length, 1);
    const [call] = body.output;
    assert.deepEqual([call.type, call.status, call.name], ['function_call', 'completed', 'get_weather']);
    assert.match(call.id, /^fc_[0-9a-f]+$/);
    assert.match(call.call_id, /^call_[0-9a-f]+$/);
    const args = JSON.parse(call.arguments);
    assert.equal(typeof args.city, 'string');
    assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7, call.arguments);
    assert.equal(body.usage.output_tokens, countTextTokens(call.arguments));
    assert.deepEqual([body.tools, body.tool_choice], [ask.tools, ask.tool_choice]);
    const again = (await responses(ask)).output[0];
    assert.deepEqual([again.id, again.call_id, again.arguments], [call.id, call.call_id, call.arguments]);
    const otherSeed = (await responses({ ...ask, seed: 5 })).output[0];
    assert.notEqual(otherSeed.call_id, call.call_id);
  });

  test('responses API tool_choice: auto and required call a tool, none and a tool result get text, bad choices get 400', async () => {
    const auto = await responses({ input: 'What time is it?', tools: [weather, clock] });
    assert.equal(auto.output[0].type, 'function_call');
    assert.ok(['get_weather', 'get_time'].includes(auto.output[0].name));
    const required = await responses({ input: 'x', tools: [clock], tool_choice: 'required' });
    assert.equal(required.output[0].name, 'get_time');
    assert.ok(['UTC', 'CET'].includes(JSON.parse(required.output[0].arguments).zone));
    // A function without parameters is called with an empty object, as OpenAI does.
    const bare = await responses({ input: 'x', tools: [{ type: 'function', name: 'ping', parameters: null }], tool_choice: 'required' });
    assert.equal(bare.output[0].arguments, '{}');

    const none = await responses({ input: 'x', tools: [clock], tool_choice: 'none', max_output_tokens: 4 });
    assert.equal(none.output[0].type, 'message');
    const call = auto.output[0];
    const answered = await responses({
      input: [{ role: 'user', content: 'What time is it?' }, call, { type: 'function_call_output', call_id: call.call_id, output: '12:00' }],
      tools: [weather, clock],
      max_output_tokens: 4,
    });
    assert.equal(answered.output[0].type, 'message', 'the model answers from the tool result');

    for (const [ask, message] of [
      [{ tools: [clock], tool_choice: { type: 'function', name: 'nope' } }, /no tool named "nope"/],
      [{ tool_choice: 'required' }, /tools must be given/],
      [{ tools: [{ type: 'function', function: { name: 'chat-shaped' } }] }, /"tools\.0\.name"/],
    ] as const) {
      const res = await postJson(`${sim.url}/v1/responses`, { model: MODEL, input: 'x', ...ask });
      assert.equal(res.status, 400, JSON.stringify(ask));
      assert.match((await res.json()).error.message, message);
    }
  });

  test('responses API with tools, streamed: the item, argument deltas, their .done, the item done, response.completed', async () => {
    const ask = { input: 'Weather in Paris?', tools: [weather], tool_choice: 'required' };
    const whole = (await responses(ask)).output[0];
    const events = [];
    for await (const data of sseData(await postJson(`${sim.url}/v1/responses`, { model: MODEL, ...ask, stream: true }))) events.push(JSON.parse(data));
    const types = events.map((e) => e.type);
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta');
    assert.ok(deltas.length > 1);
    assert.deepEqual(types, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      ...deltas.map(() => 'response.function_call_arguments.delta'),
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const added = events[2];
    assert.deepEqual(added.item, { ...whole, status: 'in_progress', arguments: '' });
    assert.equal(added.output_index, 0);
    for (const e of [...deltas, events.at(-3)]) assert.deepEqual([e.item_id, e.output_index], [whole.id, 0]);
    assert.equal(deltas.map((e) => e.delta).join(''), whole.arguments);
    assert.deepEqual([events.at(-3).arguments, events.at(-3).name], [whole.arguments, whole.name]);
    assert.deepEqual(events.at(-2).item, whole);
    const completed = events.at(-1).response;
    assert.deepEqual(completed.output, [whole]);
    assert.equal(completed.usage.output_tokens, deltas.length);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
  });

  test('embeddings: strings, arrays, token ids, base64; similar texts stay similar', async () => {
    const texts = ['reset my password please', 'please reset my password', 'the weather in paris'];
    const res = await postJson(`${sim.url}/v1/embeddings`, { model: MODEL, input: texts });
    const body = await res.json();
    assert.equal(body.object, 'list');
    assert.equal(body.data.length, 3);
    assert.equal(body.usage.prompt_tokens, texts.reduce((s, t) => s + countTextTokens(t), 0));
    const [a, b, c] = body.data.map((d: { embedding: number[] }) => d.embedding);
    assert.ok(cosineSimilarity(a, b) > cosineSimilarity(a, c) + 0.3);

    const ids = await (await postJson(`${sim.url}/v1/embeddings`, { model: MODEL, input: [15339, 1917] })).json();
    assert.equal(ids.usage.prompt_tokens, 2);
    const b64 = await (
      await postJson(`${sim.url}/v1/embeddings`, { model: MODEL, input: 'hi', encoding_format: 'base64' })
    ).json();
    assert.equal(Buffer.from(b64.data[0].embedding, 'base64').length, 256 * 4);
  });

  test('models list: base model and adapters with parent', async () => {
    const body = await (await fetch(`${sim.url}/v1/models`)).json();
    assert.equal(body.object, 'list');
    assert.deepEqual(
      body.data.map((m: { id: string; parent: string | null }) => [m.id, m.parent]),
      [
        [MODEL, null],
        ['sql-lora', MODEL],
        ['tone-lora', MODEL],
      ],
    );
    // The default KV cache (2,048 blocks of 16) holds the default context whole; it was quietly cut to 32,431.
    assert.deepEqual(new Set(body.data.map((m: { max_model_len: number }) => m.max_model_len)), new Set([32768]));
  });

  test('a KV cache that cannot hold one sequence of the context length is refused at start, as vLLM refuses it', async () => {
    await assert.rejects(startSimServer({ model: MODEL, kvBlocks: 1 }), /--kv-blocks 1 \(16 tokens\) cannot hold one sequence of --max-model-len 32768 tokens/);
    const fits = await startSimServer({ model: MODEL, kvBlocks: 64, maxModelLen: 1024 });
    await fits.close();
  });

  test("errors: unknown model 404, bad JSON 400, wrong types 400, all of vLLM's shape", async () => {
    const unknown = await postJson(`${sim.url}/v1/chat/completions`, { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(unknown.status, 404);
    // vLLM's ErrorInfo: the status as an integer code, the field at fault as param.
    assert.deepEqual((await unknown.json()).error, { message: 'The model `nope` does not exist.', type: 'NotFoundError', param: 'model', code: 404 });

    const bad = await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', body: '{"model":' });
    assert.equal(bad.status, 400);
    assert.deepEqual((await bad.json()).error, { message: 'The request body is not valid JSON', type: 'BadRequestError', param: null, code: 400 });

    const wrong = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: 'hi', max_tokens: -1 });
    assert.equal(wrong.status, 400);
    const { error } = await wrong.json();
    assert.deepEqual([error.type, error.param], ['BadRequestError', 'messages']);

    const tooLong = await postJson(`${sim.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 1_000_000,
    });
    assert.equal(tooLong.status, 400);

    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    assert.equal((await fetch(`${sim.url}/nope`)).status, 404);
  });

  test("vLLM's 400s: an empty prompt, token ids outside the vocabulary (echoed or not), min_tokens above max_tokens", async () => {
    const user = [{ role: 'user', content: 'hi' }];
    const cases: [string, object, RegExp][] = [
      ['completions', { model: MODEL, prompt: '' }, /^The decoder prompt cannot be empty$/],
      ['completions', { model: MODEL, prompt: [[]] }, /^The decoder prompt cannot be empty$/],
      ['responses', { model: MODEL, input: [] }, /^The decoder prompt cannot be empty$/],
      ['completions', { model: MODEL, prompt: [999_999_999], echo: true, max_tokens: 2 }, /^Token id 999999999 is out of vocabulary$/],
      ['completions', { model: MODEL, prompt: [5, 999_999_999], max_tokens: 2 }, /^Token id 999999999 is out of vocabulary$/],
      ['chat/completions', { model: MODEL, messages: user, min_tokens: 50, max_tokens: 5 }, /^min_tokens must be less than or equal to max_tokens=5, got 50\.$/],
      // Completions' max_tokens of 16 when left out.
      ['completions', { model: MODEL, prompt: 'hi', min_tokens: 20 }, /^min_tokens must be less than or equal to max_tokens=16, got 20\.$/],
    ];
    for (const [path, body, message] of cases) {
      const res = await postJson(`${sim.url}/v1/${path}`, body);
      const { error } = await res.json();
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(error.type, 'BadRequestError');
      assert.match(error.message, message);
    }
    // A prompt with no tokens once drove the prefix-cache hit counter negative, and the page failed from then on.
    assert.equal((await fetch(`${sim.url}/metrics`)).status, 200);
  });
});

describe('sim server: latency model over HTTP', () => {
  test('a prefix-cache hit has lower TTFT than a miss for the same long prompt', async () => {
    // Modelled: miss ~0.5 s, hit 0.04 s, halved by the time scale; the best of two hits absorbs scheduling noise.
    const sim = await startSimServer({ model: MODEL, timeScale: 2 });
    try {
      const prompt = longPrompt('doc');
      const miss = await streamTtft(sim.url, prompt);
      const hits = [await streamTtft(sim.url, prompt), await streamTtft(sim.url, prompt)];
      const hit = hits[0].ttft < hits[1].ttft ? hits[0] : hits[1];
      assert.equal(miss.usage.prompt_tokens_details.cached_tokens, 0);
      assert.ok(hit.usage.prompt_tokens_details.cached_tokens > 0.9 * hit.usage.prompt_tokens);
      assert.ok(hit.ttft < miss.ttft / 2, `hit ${hit.ttft} ms, miss ${miss.ttft} ms`);
      const m = await scrape(sim.url);
      assert.ok(sampleValue(m, 'vllm:prefix_cache_hits_total')! > 0);
      assert.equal(sampleValue(m, 'vllm:prefix_cache_queries_total'), miss.usage.prompt_tokens * 3);
    } finally {
      await sim.close();
    }
  });

  test('more concurrent load gives longer TTFT', async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 20 });
    try {
      const alone = [];
      for (let i = 0; i < 3; i++) alone.push((await streamTtft(sim.url, `alone ${i}`)).ttft);
      const loaded = await Promise.all(Array.from({ length: 48 }, (_, i) => streamTtft(sim.url, `busy ${i}`, 20)));
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const aloneTtft = median(alone);
      const loadedTtft = median(loaded.map((r) => r.ttft));
      assert.ok(loadedTtft > 2 * aloneTtft, `alone ${aloneTtft} ms, loaded ${loadedTtft} ms`);
    } finally {
      await sim.close();
    }
  });
});

describe('sim server: metrics, queueing, LoRA, disconnects', () => {
  test('metrics reflect in-flight requests at scrape time', async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 10, maxNumSeqs: 2, kvBlocks: 512, maxModelLen: 8192 });
    const abort = new AbortController();
    try {
      const inflight = Array.from({ length: 5 }, (_, i) =>
        postJson(
          `${sim.url}/v1/chat/completions`,
          { model: MODEL, messages: [{ role: 'user', content: `req ${i}` }], max_tokens: 5000, stream: true },
          { signal: abort.signal },
        ).catch(() => undefined),
      );
      await waitFor(() => sim.state().running === 2 && sim.state().waiting === 3);
      const m = await scrape(sim.url);
      assert.equal(sampleValue(m, 'vllm:num_requests_running'), 2);
      assert.equal(sampleValue(m, 'vllm:num_requests_waiting'), 3);
      const kv = sampleValue(m, 'vllm:kv_cache_usage_perc')!;
      assert.ok(kv > 0 && kv <= 1);
      const info = m.find((s) => s.name === 'vllm:cache_config_info')!;
      assert.deepEqual(info.labels, { block_size: '16', num_gpu_blocks: '512', model_name: MODEL });
      assert.equal(info.value, 1);
      assert.ok(m.every((s) => s.labels.model_name === MODEL));
      for (const name of [
        'vllm:time_to_first_token_seconds_count',
        'vllm:e2e_request_latency_seconds_count',
        'vllm:prompt_tokens_total',
        'vllm:generation_tokens_total',
      ]) {
        assert.ok(m.some((s) => s.name === name), name);
      }

      // Hanging up cancels: slots and blocks are freed.
      abort.abort();
      await Promise.all(inflight);
      await waitFor(() => sim.state().running === 0 && sim.state().waiting === 0);
      const after = await scrape(sim.url);
      assert.equal(sampleValue(after, 'vllm:kv_cache_usage_perc'), 0);
      assert.equal(sampleValue(after, 'vllm:num_requests_running'), 0);
    } finally {
      abort.abort();
      await sim.close();
    }
  });

  test('finished requests are counted', async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 50 });
    try {
      await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'a' }], max_tokens: 3 });
      const m = await scrape(sim.url);
      const finished = m.filter((s) => s.name === 'vllm:request_success_total');
      assert.equal(finished.reduce((sum, s) => sum + s.value, 0), 1);
      assert.equal(sampleValue(m, 'vllm:generation_tokens_total'), 3);
      assert.equal(sampleValue(m, 'vllm:time_to_first_token_seconds_count'), 1);
      assert.equal(sampleValue(m, 'vllm:e2e_request_latency_seconds_count'), 1);
    } finally {
      await sim.close();
    }
  });

  test('n > 1 runs n sequences, as vLLM does: n batch slots, n running requests; still one answer of n choices', async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 10, maxNumSeqs: 4 });
    const abort = new AbortController();
    const ask = (body: object, signal?: AbortSignal) =>
      postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'several answers' }], ...body }, { signal });
    try {
      const pending = ask({ n: 6, max_tokens: 5000, ignore_eos: true, stream: true }, abort.signal).catch(() => undefined);
      await waitFor(() => sim.state().running === 4 && sim.state().waiting === 2);
      const m = await scrape(sim.url);
      assert.equal(sampleValue(m, 'vllm:num_requests_running'), 4);
      assert.equal(sampleValue(m, 'vllm:num_requests_waiting'), 2);
      abort.abort();
      await pending;
      await waitFor(() => sim.state().running === 0 && sim.state().waiting === 0 && sim.state().kvUsedBlocks === 0);

      const streamed = await ask({ n: 3, max_tokens: 4, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
      const events = [];
      for await (const data of sseData(streamed)) events.push(data);
      assert.equal(events.at(-1), '[DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      for (const index of [0, 1, 2]) {
        const own = chunks.filter((c) => c.choices[0]?.index === index);
        assert.deepEqual(own[0].choices[0].delta, { role: 'assistant', content: '' });
        assert.equal(own.filter((c) => c.choices[0].delta.content).length, 4);
        assert.equal(own.at(-1).choices[0].finish_reason, 'length');
      }
      assert.equal(chunks.at(-1).usage.completion_tokens, 12);

      const whole = await (await ask({ n: 3, max_tokens: 4, ignore_eos: true })).json();
      assert.deepEqual(whole.choices.map((c: any) => c.index), [0, 1, 2]);
      assert.equal(whole.usage.completion_tokens, 12);
    } finally {
      abort.abort();
      await sim.close();
    }
  });

  test('with a time scale, the latency histograms record simulated seconds', async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 10 });
    try {
      const res = await postJson(`${sim.url}/v1/completions`, { model: MODEL, prompt: 'hello', max_tokens: 100, ignore_eos: true });
      const promptTokens = (await res.json()).usage.prompt_tokens;
      const m = await scrape(sim.url);
      // Timers fire late, never early: the simulated durations are lower bounds.
      const ttft = prefillSeconds(promptTokens);
      assert.ok(sampleValue(m, 'vllm:time_to_first_token_seconds_sum')! >= ttft);
      assert.ok(sampleValue(m, 'vllm:e2e_request_latency_seconds_sum')! >= ttft + 99 * decodeStepSeconds(1, promptTokens));
    } finally {
      await sim.close();
    }
  });

  test("with a large time scale the histograms follow the model: the steps' scheduled ends, not real time × the scale", async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 1000 });
    try {
      const res = await postJson(`${sim.url}/v1/completions`, { model: MODEL, prompt: 'hello', max_tokens: 20, ignore_eos: true });
      const promptTokens = (await res.json()).usage.prompt_tokens;
      const m = await scrape(sim.url);
      const ttft = prefillSeconds(promptTokens);
      let e2e = ttft;
      for (let held = promptTokens + 1; held < promptTokens + 20; held++) e2e += decodeStepSeconds(1, held);
      // Reading and tokenizing the request add the real time they took, unscaled (well under the margin); before, a
      // millisecond of timer lateness alone counted as a simulated second.
      const ttftSum = sampleValue(m, 'vllm:time_to_first_token_seconds_sum')!;
      const e2eSum = sampleValue(m, 'vllm:e2e_request_latency_seconds_sum')!;
      assert.ok(ttftSum >= ttft - 1e-9 && ttftSum < ttft + 0.5, `ttft ${ttftSum} s, the model's ${ttft} s`);
      assert.ok(e2eSum >= e2e - 1e-9 && e2eSum < e2e + 0.5, `e2e ${e2eSum} s, the model's ${e2e} s`);
    } finally {
      await sim.close();
    }
  });

  test("a stream the client leaves has its tokens counted as vLLM counts them, step by step, and is no finished request", async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 10 });
    const abort = new AbortController();
    const messages = [{ role: 'user', content: 'count me in' }];
    try {
      const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages, max_tokens: 5000, ignore_eos: true, stream: true }, { signal: abort.signal });
      let received = 0;
      for await (const data of sseData(res)) if (JSON.parse(data).choices[0]?.delta?.content && ++received === 5) break;
      abort.abort();
      await waitFor(() => sim.state().running === 0);
      const m = await scrape(sim.url);
      assert.equal(sampleValue(m, 'vllm:prompt_tokens_total'), countChatTokens(messages));
      assert.ok(sampleValue(m, 'vllm:generation_tokens_total')! >= 5);
      assert.equal(sampleValue(m, 'vllm:time_to_first_token_seconds_count'), 1);
      assert.equal(sampleValue(m, 'vllm:e2e_request_latency_seconds_count'), 0);
      // Every finish reason has its series from the start, as in vLLM; a client's hang-up is in none of them.
      const finished = m.filter((s) => s.name === 'vllm:request_success_total').map((s) => [s.labels.finished_reason, s.value]);
      assert.deepEqual(finished, [['stop', 0], ['length', 0], ['abort', 0], ['error', 0], ['repetition', 0]]);
    } finally {
      abort.abort();
      await sim.close();
    }
  });

  test('a full waiting queue answers 429', async () => {
    const sim = await startSimServer({ model: MODEL, timeScale: 10, maxNumSeqs: 1, maxQueue: 2 });
    const abort = new AbortController();
    try {
      const first = Array.from({ length: 3 }, (_, i) =>
        postJson(
          `${sim.url}/v1/chat/completions`,
          { model: MODEL, messages: [{ role: 'user', content: `q${i}` }], max_tokens: 5000, stream: true },
          { signal: abort.signal },
        ),
      );
      await waitFor(() => sim.state().running === 1 && sim.state().waiting === 2);
      const refused = await postJson(`${sim.url}/v1/chat/completions`, {
        model: MODEL,
        messages: [{ role: 'user', content: 'one too many' }],
      });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal((await refused.json()).error.type, 'RateLimitError');
      for (const r of await Promise.all(first)) assert.equal(r.status, 200);
    } finally {
      abort.abort();
      await sim.close();
    }
  });

  test('LoRA residency: max_lora adapters loaded, lora_requests_info shows running and waiting adapters', async () => {
    const sim = await startSimServer({ model: MODEL, loras: ['a', 'b', 'c'], maxLoras: 1, timeScale: 10 });
    const abort = new AbortController();
    try {
      const ask = (model: string) =>
        postJson(
          `${sim.url}/v1/chat/completions`,
          { model, messages: [{ role: 'user', content: model }], max_tokens: 5000, stream: true },
          { signal: abort.signal },
        ).catch(() => undefined);
      const pending = [ask('a')];
      await waitFor(() => sim.state().running === 1);
      pending.push(ask('b'));
      await waitFor(() => sim.state().waiting === 1);
      const info = newestLora(await scrape(sim.url));
      assert.deepEqual(info.labels, { running_lora_adapters: 'a', waiting_lora_adapters: 'b', max_lora: '1', model_name: MODEL });
      assert.ok(Math.abs(info.value - Date.now() / 1000) < 60);
      assert.deepEqual(sim.state().residentLoras, ['a']);

      abort.abort();
      await Promise.all(pending);
      await waitFor(() => sim.state().running === 0 && sim.state().waiting === 0);
      // The idle adapter gives way to the next one requested.
      const res = await postJson(`${sim.url}/v1/chat/completions`, { model: 'c', messages: [{ role: 'user', content: 'c' }], max_tokens: 2 });
      assert.equal(res.status, 200);
      assert.deepEqual(sim.state().residentLoras, ['c']);
      const page = await scrape(sim.url);
      const idle = newestLora(page);
      assert.equal(idle.labels.running_lora_adapters, '');
      // As on vLLM, the label sets of before stay on the page, with older values.
      const earlier = page.find((s) => s.name === 'vllm:lora_requests_info' && s.labels.running_lora_adapters === 'a');
      assert.ok(earlier && earlier.value < idle.value);
    } finally {
      abort.abort();
      await sim.close();
    }
  });
});

/** The vllm:lora_requests_info sample with the newest value: the label set of now. */
function newestLora(samples: Sample[]): Sample {
  const lora = samples.filter((s) => s.name === 'vllm:lora_requests_info');
  return lora.reduce((a, b) => (b.value > a.value ? b : a));
}
