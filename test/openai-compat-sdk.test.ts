// The official openai SDK through tollgate in front of the simulator, API keys and an LLMTokenQuota on (so tollgate
// turns stream_options.include_usage on for itself): tools and streamed tool_calls, response_format, logprobs, n, stop,
// seed, max_completion_tokens, legacy completions (echo, logprobs, suffix), embeddings (base64, dimensions), the
// Responses API, models, cancellation mid-stream. Every streamed chunk is checked for usage the client did not ask for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { waitFor } from '../src/sim/testing.js';
import { createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let fleet: SimFleet;
let gw: Gateway;
let client: OpenAI;

/** A gateway with API keys and an LLMTokenQuota of `tokens` a day in front of the fleet, and a key for it. */
async function sdkGateway(opts: { tokens: number; faultFormat?: 'openai' | 'apigee' }): Promise<{ gw: Gateway; key: string }> {
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  const gateway = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' }, faultFormat: opts.faultFormat ?? 'openai' }),
      manifest('APIProduct', 'p', { displayName: 'P', approvalType: 'auto', enforcementRefs: ext }),
      manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }] }),
      manifest('LLMTokenQuota', 'tokens', { limit: opts.tokens, timeUnit: 'day', countOn: 'total' }),
      manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
      manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
      manifest('InferenceModel', 'org-chat', { modelName: 'org/chat', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
    ],
    ...LOOPBACK,
  });
  gateways.push(gateway);
  const app = await createApp(gateway.adminUrl, ['p'], 'compat');
  await untilKeyKnown(gateway.url, app.key);
  return { gw: gateway, key: app.key };
}

const gateways: Gateway[] = [];

before(async () => {
  fleet = await startSimFleet({ replicas: 1, model: 'base-model', timeScale: 50 });
  let key: string;
  ({ gw, key } = await sdkGateway({ tokens: 10_000_000 }));
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
});

after(async () => {
  for (const g of gateways) await g.close();
  await fleet?.close();
});

const user = (content: string) => [{ role: 'user' as const, content }];
const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'] },
  },
};
const clock = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } } } } };

/** Every chunk of a stream, each checked: no usage key at all unless the client asked for it. */
async function chunksOf(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk | OpenAI.Completions.Completion>, usageAsked: boolean) {
  const all = [];
  for await (const chunk of stream) {
    if (!usageAsked) assert.equal('usage' in chunk, false, `a chunk carries usage the client did not ask for: ${JSON.stringify(chunk)}`);
    all.push(chunk);
  }
  return all;
}

test('chat with tools: a tool call whose arguments follow the schema, then an answer from the tool result', async () => {
  const chat = await client.chat.completions.create({ model: 'chat', messages: user('Weather in Paris?'), tools: [weather, clock], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
  const call = chat.choices[0].message.tool_calls![0];
  assert.equal(call.type, 'function');
  assert.equal(call.type === 'function' && call.function.name, 'get_weather');
  const args = JSON.parse(call.type === 'function' ? call.function.arguments : '');
  assert.equal(typeof args.city, 'string');
  assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7);
  assert.equal(chat.choices[0].message.content, null);
  assert.equal(chat.choices[0].finish_reason, 'stop', 'a forced call ends with stop, as OpenAI reports it');

  const auto = await client.chat.completions.create({ model: 'chat', messages: user('What time is it?'), tools: [weather, clock] });
  assert.equal(auto.choices[0].finish_reason, 'tool_calls');
  const required = await client.chat.completions.create({ model: 'chat', messages: user('x'), tools: [clock], tool_choice: 'required' });
  assert.deepEqual(Object.keys(JSON.parse((required.choices[0].message.tool_calls![0] as { function: { arguments: string } }).function.arguments)), ['zone']);
  const none = await client.chat.completions.create({ model: 'chat', messages: user('x'), tools: [clock], tool_choice: 'none', max_tokens: 4 });
  assert.equal(none.choices[0].message.tool_calls, undefined);
  assert.ok(none.choices[0].message.content!.length > 0);

  const answered = await client.chat.completions.create({
    model: 'chat',
    max_tokens: 5,
    tools: [weather],
    messages: [...user('Weather in Paris?'), auto.choices[0].message, { role: 'tool', tool_call_id: auto.choices[0].message.tool_calls![0].id, content: 'sunny' }],
  });
  assert.equal(answered.choices[0].message.tool_calls, undefined);
  assert.ok(answered.choices[0].message.content!.length > 0);
  await assert.rejects(
    client.chat.completions.create({ model: 'chat', messages: user('x'), tools: [clock], tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (err: unknown) => err instanceof OpenAI.BadRequestError,
  );
});

test('streamed tool_calls deltas: the SDK stream helper assembles the call; no usage leaks into any chunk', async () => {
  const messages = user('Weather in Paris?');
  const raw = await client.chat.completions.create({ model: 'chat', messages, tools: [weather], tool_choice: 'required', stream: true });
  const chunks = (await chunksOf(raw, false)) as OpenAI.Chat.Completions.ChatCompletionChunk[];
  const first = chunks[0].choices[0].delta.tool_calls![0];
  assert.equal(first.function!.name, 'get_weather');
  assert.ok(first.id!.length > 0);
  assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'tool_calls');
  const streamed = chunks.map((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '').join('');

  const helper = client.chat.completions.stream({ model: 'chat', messages, tools: [weather], tool_choice: 'required' });
  const final = await helper.finalChatCompletion();
  const call = final.choices[0].message.tool_calls![0];
  assert.equal(call.type === 'function' && call.function.arguments, streamed, 'the same seed and prompt give the same call');
  assert.equal(typeof JSON.parse(streamed).city, 'string');
});

test('response_format json_object and json_schema give JSON content (and the SDK parse helper reads it)', async () => {
  const obj = await client.chat.completions.create({ model: 'chat', messages: user('JSON please'), response_format: { type: 'json_object' } });
  assert.equal(typeof JSON.parse(obj.choices[0].message.content!), 'object');
  const schema = { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } }, ok: { type: 'boolean' } }, required: ['name', 'tags', 'ok'], additionalProperties: false };
  const parsed = await client.chat.completions.parse({
    model: 'chat',
    messages: user('A record'),
    response_format: { type: 'json_schema', json_schema: { name: 'record', schema, strict: true } },
  });
  const value = parsed.choices[0].message.parsed as unknown as { name: string; tags: string[]; ok: boolean };
  assert.equal(typeof value.name, 'string');
  assert.ok(Array.isArray(value.tags));
  assert.equal(typeof value.ok, 'boolean');
});

test('logprobs and top_logprobs, streamed and not', async () => {
  const chat = await client.chat.completions.create({ model: 'chat', messages: user('Hi'), max_tokens: 4, logprobs: true, top_logprobs: 3 });
  const content = chat.choices[0].logprobs!.content!;
  assert.equal(content.length, chat.usage!.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), chat.choices[0].message.content);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token);
  }
  const stream = await client.chat.completions.create({ model: 'chat', messages: user('Hi'), max_tokens: 4, logprobs: true, top_logprobs: 2, stream: true });
  const tokens = ((await chunksOf(stream, false)) as OpenAI.Chat.Completions.ChatCompletionChunk[]).flatMap((c) => c.choices[0]?.logprobs?.content ?? []);
  assert.deepEqual(tokens.map((t) => t.logprob), content.map((t) => t.logprob), 'same prompt, same logprobs');
  const plain = await client.chat.completions.create({ model: 'chat', messages: user('Hi'), max_tokens: 4 });
  assert.equal(plain.choices[0].logprobs, null);
});

test('n > 1: n different choices, usage counts them all; streamed with and without include_usage', async () => {
  const chat = await client.chat.completions.create({ model: 'chat', messages: user('Two answers'), n: 3, max_tokens: 6, ignore_eos: true } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
  assert.deepEqual(chat.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(new Set(chat.choices.map((c) => c.message.content)).size, 3);
  assert.equal(chat.usage!.completion_tokens, 18);

  for (const includeUsage of [false, true]) {
    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: user('Two answers'),
      n: 3,
      max_tokens: 6,
      stream: true,
      ...(includeUsage && { stream_options: { include_usage: true } }),
      ignore_eos: true,
    } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
    const chunks = (await chunksOf(stream, includeUsage)) as OpenAI.Chat.Completions.ChatCompletionChunk[];
    const texts = ['', '', ''];
    for (const c of chunks) for (const ch of c.choices) texts[ch.index] += ch.delta.content ?? '';
    assert.deepEqual(texts, chat.choices.map((c) => c.message.content));
    assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 3);
    if (includeUsage) {
      assert.deepEqual(chunks.at(-1)!.choices, []);
      assert.equal(chunks.at(-1)!.usage!.completion_tokens, 18);
      for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
    }
  }
});

test('stop, seed and max_completion_tokens', async () => {
  const base = await client.chat.completions.create({ model: 'chat', messages: user('Say something long'), max_completion_tokens: 30, ignore_eos: true } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
  const text = base.choices[0].message.content!;
  assert.equal(base.usage!.completion_tokens, 30);
  assert.equal(base.choices[0].finish_reason, 'length');
  const word = text.split(' ')[3];
  const stopped = await client.chat.completions.create({ model: 'chat', messages: user('Say something long'), max_completion_tokens: 30, stop: [` ${word}`], ignore_eos: true } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  assert.equal(stopped.choices[0].message.content, text.slice(0, text.indexOf(` ${word}`)));
  const seeded = (seed: number) => client.chat.completions.create({ model: 'chat', messages: user('Seeded'), max_tokens: 8, seed });
  assert.equal((await seeded(1)).choices[0].message.content, (await seeded(1)).choices[0].message.content);
  assert.notEqual((await seeded(1)).choices[0].message.content, (await seeded(2)).choices[0].message.content);
});

test('streamed chat: include_usage off (tollgate asked for usage itself) shows no usage; on shows it once, last', async () => {
  for (const options of [undefined, { include_usage: false }, null]) {
    const stream = await client.chat.completions.create({ model: 'chat', messages: user('Stream'), max_tokens: 5, stream: true, stream_options: options });
    const chunks = await chunksOf(stream, false);
    assert.ok(chunks.length >= 3);
  }
  const stream = await client.chat.completions.create({ model: 'chat', messages: user('Stream'), max_tokens: 5, stream: true, stream_options: { include_usage: true } });
  const chunks = (await chunksOf(stream, true)) as OpenAI.Chat.Completions.ChatCompletionChunk[];
  assert.equal(chunks.filter((c) => c.usage).length, 1);
  assert.equal(chunks.at(-1)!.usage!.completion_tokens, 5);
});

test('legacy completions: echo, logprobs, n, stream; suffix refused as vLLM refuses it', async () => {
  const done = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 4, echo: true, logprobs: 2 });
  const c = done.choices[0];
  assert.ok(c.text.startsWith('Once upon a time'));
  assert.equal(c.logprobs!.tokens!.join(''), c.text);
  assert.equal(c.logprobs!.token_logprobs![0], null);
  assert.equal(c.logprobs!.tokens!.length, done.usage!.prompt_tokens + done.usage!.completion_tokens);
  assert.equal(Object.keys(c.logprobs!.top_logprobs!.at(-1)!).length, 2);

  const stream = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 4, n: 2, stream: true });
  const chunks = (await chunksOf(stream, false)) as OpenAI.Completions.Completion[];
  assert.deepEqual([...new Set(chunks.map((ch) => ch.choices[0].index))].sort(), [0, 1]);
  const withUsage = await client.completions.create({ model: 'chat', prompt: 'Once', max_tokens: 3, stream: true, stream_options: { include_usage: true } });
  assert.equal(((await chunksOf(withUsage, true)) as OpenAI.Completions.Completion[]).at(-1)!.usage!.completion_tokens, 3);

  await assert.rejects(client.completions.create({ model: 'chat', prompt: 'def f(', suffix: 'return 1', max_tokens: 4 }), (err: unknown) => err instanceof OpenAI.BadRequestError);
});

test('embeddings: base64 (the SDK decodes it) and dimensions', async () => {
  const floats = await client.embeddings.create({ model: 'chat', input: 'the cat sat', dimensions: 16, encoding_format: 'float' });
  const b64 = await client.embeddings.create({ model: 'chat', input: 'the cat sat', dimensions: 16, encoding_format: 'base64' });
  assert.equal(floats.data[0].embedding.length, 16);
  assert.equal(typeof b64.data[0].embedding, 'string');
  const bytes = Buffer.from(b64.data[0].embedding as unknown as string, 'base64');
  const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  assert.deepEqual([...decoded].map((x) => x.toFixed(5)), floats.data[0].embedding.map((x) => x.toFixed(5)));
  const sdkDecoded = await client.embeddings.create({ model: 'chat', input: 'the cat sat', dimensions: 16 });
  assert.equal(sdkDecoded.data[0].embedding.length, 16, 'the SDK asks for base64 by default and decodes it');
});

test('Responses API: instructions and max_output_tokens, and the typed stream events', async () => {
  const r = await client.responses.create({ model: 'chat', input: 'Hello', instructions: 'Be brief.', max_output_tokens: 5, metadata: { k: 'v' } });
  assert.equal(r.instructions, 'Be brief.');
  assert.equal(r.max_output_tokens, 5);
  assert.deepEqual(r.metadata, { k: 'v' });
  assert.ok(r.output_text.length > 0);
  const types: string[] = [];
  const stream = client.responses.stream({ model: 'chat', input: 'Hello', instructions: 'Be brief.', max_output_tokens: 5 });
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  const final = await stream.finalResponse();
  assert.equal(final.output_text, text);
  assert.equal(types[0], 'response.created');
  assert.ok(['response.completed', 'response.incomplete'].includes(types.at(-1)!));
  const json = await client.responses.create({ model: 'chat', input: 'JSON', text: { format: { type: 'json_schema', name: 'r', schema: { type: 'object', properties: { a: { type: 'string' } } } } } });
  assert.equal(typeof JSON.parse(json.output_text).a, 'string');
});

test('models.list() and models.retrieve(), also of an id with a slash (the SDK sends it as %2F); HEAD answers as GET does', async () => {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['chat', 'org/chat']);
  assert.equal((await client.models.retrieve('chat')).id, 'chat');
  assert.equal((await client.models.retrieve('org/chat')).id, 'org/chat');
  await assert.rejects(client.models.retrieve('nope'), (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found');
  const head = await fetch(`${gw.url}/v1/models`, { method: 'HEAD', headers: { authorization: `Bearer ${client.apiKey}` } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), 'application/json');
});

test('a refused field is named in error.param, which the SDK exposes; a wrong method says which is allowed', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'chat', messages: 'hi' as never }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.param, 'messages');
    return true;
  });
  const wrong = await fetch(`${gw.url}/v1/chat/completions`, { method: 'PUT', headers: { authorization: `Bearer ${client.apiKey}` } });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'POST');
  // The model list exists for GET and HEAD: other methods were a 404, as if it did not (the SDK's NotFoundError).
  for (const path of ['/v1/models', '/v1/models/chat']) {
    const posted = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${client.apiKey}` } });
    assert.equal(posted.status, 405, path);
    assert.equal(posted.headers.get('allow'), 'GET, HEAD');
  }
});

test('AbortController mid-stream: the SDK ends the iteration and the model server stops generating', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'chat', messages: user('A long one'), max_tokens: 2000, ignore_eos: true, stream: true } as OpenAI.Chat.ChatCompletionCreateParamsStreaming,
    { signal: controller.signal },
  );
  let seen = 0;
  // The SDK's Stream treats its own abort as the end of the iteration, not an error.
  for await (const _chunk of stream) if (++seen === 5) controller.abort();
  assert.ok(seen < 100, `iteration went on after the abort (${seen} chunks)`);
  await waitFor(() => fleet.servers[0].state().running === 0 && fleet.servers[0].state().waiting === 0, 5000, 'the sequence cancelled upstream');
});

// What the SDK makes of tollgate's refusals: a token-quota 429 for a request that can never fit carries no
// retry-after, yet the SDK retries every 429 (twice by default) unless told `x-should-retry: false`; with faultFormat
// apigee the SDK reads only `error`, so without it the right class came with no code or message.
/** A client with the SDK's default retries (two, each after whatever retry-after says), counting the requests it sends. */
function countingClient(gw: Gateway, key: string): { client: OpenAI; sent: { calls: number } } {
  const sent = { calls: 0 };
  const client = new OpenAI({
    baseURL: `${gw.url}/v1`,
    apiKey: key,
    fetch: (url, init) => {
      sent.calls++;
      return fetch(url, init);
    },
  });
  return { client, sent };
}

test('a token-quota 429 that can never fit is not retried by the SDK', async () => {
  const { gw, key } = await sdkGateway({ tokens: 60 });
  const { client, sent } = countingClient(gw, key);
  await assert.rejects(
    client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1000 }),
    (err: unknown) => err instanceof OpenAI.RateLimitError && err.code === 'policies.llmtokenquota.LLMTokenQuotaViolation',
  );
  assert.equal(sent.calls, 1, 'the SDK sent the hopeless request again');
});

test('a token quota spent for the day is raised by the SDK at once, not slept on until the window ends', async () => {
  const { gw, key } = await sdkGateway({ tokens: 80 });
  // The SDK v6 waits out any retry-after, however long, whatever the request's timeout.
  const { client, sent } = countingClient(gw, key);
  const spend = () => client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 40, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  await spend();
  sent.calls = 0;
  // Before: retry-after said the seconds to midnight UTC and nothing else, and the SDK waited that long, twice.
  await assert.rejects(spend(), (err: unknown) => err instanceof OpenAI.RateLimitError && Number(err.headers?.get('retry-after')) > 60);
  assert.equal(sent.calls, 1, 'the SDK sent the request again');
});

test('with faultFormat apigee the SDK error still carries code and message', async () => {
  const { gw, key } = await sdkGateway({ tokens: 60, faultFormat: 'apigee' });
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(err.code, 'model_not_found', `the SDK saw: ${err.message}`);
    assert.match(err.message, /does not exist/);
    return true;
  });
});
