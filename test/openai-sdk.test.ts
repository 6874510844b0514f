// The official openai SDK, unchanged, through the gateway in front of the simulator: chat, streamed chat
// with usage in the last chunk, embeddings, responses (function calling too: responses.create() answers a
// function_call item, the tool's result gets a text answer, and the SDK's stream helper assembles the call from the
// simulator's events), and the model list.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { countChatTokens } from '../src/lib/tokenizer.js';
import { manifest } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let fleet: SimFleet;
let gw: Gateway;
let client: OpenAI;

before(async () => {
  fleet = await startSimFleet({ replicas: 2, model: 'base-model', loras: ['adapter-a'], timeScale: 50 });
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
      manifest('InferenceModel', 'embed', { modelName: 'embed', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
      manifest('InferenceModel', 'adapter', { modelName: 'adapter', poolRef: { name: 'pool' }, targetModels: [{ name: 'adapter-a', weight: 1 }] }),
    ],
    ...LOOPBACK,
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-without-api-management', maxRetries: 0 });
});

after(async () => {
  await gw.close();
  await fleet.close();
});

test('chat completion', async () => {
  const messages = [{ role: 'user' as const, content: 'Tell me about gateways.' }];
  const chat = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 12 });
  assert.equal(chat.object, 'chat.completion');
  assert.ok(chat.choices[0].message.content!.length > 0);
  assert.equal(chat.usage!.completion_tokens, 12);
  assert.equal(chat.usage!.prompt_tokens, countChatTokens(messages));
});

test('streamed chat with usage in the last chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'adapter',
    messages: [{ role: 'user', content: 'Stream please.' }],
    max_tokens: 8,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    last = chunk;
  }
  assert.ok(text.length > 0);
  assert.deepEqual(last!.choices, []);
  assert.equal(last!.usage!.completion_tokens, 8);
});

test('embeddings', async () => {
  const e = await client.embeddings.create({ model: 'embed', input: ['the cat sat on the mat', 'a cat sat on a mat'] });
  assert.equal(e.data.length, 2);
  assert.ok(e.data[0].embedding.length > 0);
});

test('responses', async () => {
  const r = await client.responses.create({ model: 'chat', input: 'Say something.', max_output_tokens: 6 });
  assert.ok(r.output_text.length > 0);
  assert.equal(r.usage!.output_tokens, 6);
});

test('model list', async () => {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['adapter', 'chat', 'embed']);
  const one = await client.models.retrieve('chat');
  assert.deepEqual([one.id, one.object], ['chat', 'model']);
  await assert.rejects(client.models.retrieve('nope'), (err: any) => err.status === 404 && err.code === 'model_not_found');
});

test('an unknown model is a NotFoundError with the documented code', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), (err: any) => {
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    return true;
  });
});

const weather: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  strict: true,
  parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'] },
};

function functionCall(r: OpenAI.Responses.Response): OpenAI.Responses.ResponseFunctionToolCall {
  assert.equal(r.output.length, 1, JSON.stringify(r.output));
  const [item] = r.output;
  assert.equal(item.type, 'function_call', JSON.stringify(item));
  return item as OpenAI.Responses.ResponseFunctionToolCall;
}

test('responses.create() with tools returns a function_call; the tool output then gets a text answer', async () => {
  const input: OpenAI.Responses.ResponseInputItem[] = [{ role: 'user', content: 'Weather in Paris for the weekend?' }];
  const r = await client.responses.create({ model: 'chat', input, tools: [weather], tool_choice: { type: 'function', name: 'get_weather' } });
  assert.equal(r.status, 'completed');
  const call = functionCall(r);
  assert.equal(call.name, 'get_weather');
  assert.equal(call.status, 'completed');
  const args = JSON.parse(call.arguments) as { city: unknown; days: number };
  assert.equal(typeof args.city, 'string');
  assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7, call.arguments);
  assert.equal(r.output_text, '', 'no text beside the call');

  const answered = await client.responses.create({
    model: 'chat',
    input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ sky: 'sunny' }) }],
    tools: [weather],
    max_output_tokens: 8,
  });
  assert.equal(answered.output[0].type, 'message');
  assert.ok(answered.output_text.length > 0);
});

test('responses.stream() with tool_choice required: the SDK assembles the call from the argument deltas', async () => {
  const stream = client.responses.stream({ model: 'chat', input: 'Weather in Oslo?', tools: [weather], tool_choice: 'required' });
  let streamed = '';
  let snapshot = '';
  let done: OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent | undefined;
  // The SDK's own accumulation of the arguments so far, from the function_call item the stream added.
  stream.on('response.function_call_arguments.delta', (ev) => (snapshot = ev.snapshot));
  for await (const ev of stream) {
    if (ev.type === 'response.function_call_arguments.delta') streamed += ev.delta;
    if (ev.type === 'response.function_call_arguments.done') done = ev;
  }
  const final = await stream.finalResponse();
  const call = functionCall(final);
  assert.ok(streamed.length > 0);
  assert.equal(call.arguments, streamed);
  assert.equal(snapshot, streamed);
  assert.deepEqual([done?.name, done?.arguments, done?.item_id], ['get_weather', streamed, call.id]);
  assert.equal(typeof JSON.parse(call.arguments).city, 'string');
});
