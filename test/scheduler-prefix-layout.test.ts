// Prefix affinity over what a model server caches, end to end: the gateway in front of two simulated servers with the
// default picker profile. The prompt it hashes is laid out as a chat template lays it out (the tool definitions first,
// each message framed, images by their content), and the simulator's KV cache holds the tokens of that same layout:
// a shared tool list is a shared prefix for both, different tools or images are none, and neither mistakes where a
// message ends.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { PoolView } from '../src/scheduler/fleet-view.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { poolAndModel } from './helpers/manifests.js';

/** Twelve function tools (about 4 KB of JSON), named after `set`. */
const toolsOf = (set: string) =>
  Array.from({ length: 12 }, (_, i) => ({
    type: 'function',
    function: { name: `${set}_${i}`, description: `Looks up ${set} record ${i} by its key and returns its fields as JSON.`, parameters: { type: 'object', properties: { key: { type: 'string' } } } },
  }));
const LONG = 'Summarize the following report on regional rainfall in a few sentences. '.repeat(12);

describe('prefix affinity over the prompt as a model server lays it out', () => {
  let fleet: SimFleet;
  let gw: Gateway;
  before(async () => {
    fleet = await startSimFleet({ replicas: 2, model: 'm', timeScale: 50 });
    gw = await startGateway({ configPaths: [], manifests: poolAndModel(fleet.urls), ...LOOPBACK });
  });
  after(async () => {
    await gw.close();
    await fleet.close();
  });

  /** Sends a chat request; what the simulator cached of its prompt, and the prefix score of the endpoint chosen. */
  async function send(body: Record<string, unknown>): Promise<{ cached: number; prefix: number | null | undefined; endpoint: string }> {
    const r = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens: 2, tool_choice: 'none', ...body }),
    });
    const answer = (await r.body.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } };
    assert.equal(r.statusCode, 200, JSON.stringify(answer));
    const view = (await (await request(`${gw.adminUrl}/v1/pools/pool`)).body.json()) as PoolView;
    const decision = view.decisions[0];
    return { cached: answer.usage.prompt_tokens_details.cached_tokens, prefix: decision.scores['prefix-cache-scorer'], endpoint: decision.endpoint };
  }

  test('one tool list before different short questions: a shared prefix, on the endpoint that cached it', async () => {
    const tools = toolsOf('weather');
    const first = await send({ tools, messages: [{ role: 'user', content: 'Rain in Oslo today?' }] });
    const second = await send({ tools, messages: [{ role: 'user', content: 'Book a table for two.' }] });
    // Before: the scorer abstained (null: the messages are shorter than a block) and the simulator cached nothing.
    assert.ok(second.prefix! > 0.9, `prefix score ${second.prefix}`);
    assert.equal(second.endpoint, first.endpoint);
    assert.ok(second.cached > 500, `cached_tokens ${second.cached}`);
  });

  test('the same messages after different tools, or with a different image, share no prefix', async () => {
    const messages = [{ role: 'user', content: LONG }];
    const first = await send({ tools: toolsOf('alpha'), messages });
    const other = await send({ tools: toolsOf('omega'), messages });
    // Before: 1.0, the whole prompt, on the endpoint that served the first tools; and that many tokens cached.
    assert.equal(other.prefix, 0);
    // What every function tool list opens with ('tools: [{"type":"function","function":{"name":"') may stay cached.
    assert.ok(other.cached <= 16 || other.endpoint !== first.endpoint, `cached_tokens ${other.cached}`);
    const image = (url: string) => [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: LONG }] }];
    await send({ messages: image('https://example.com/a.png') });
    assert.equal((await send({ messages: image('https://example.com/b.png') })).prefix, 0);
    assert.ok((await send({ messages: image('https://example.com/a.png') })).prefix! > 0.9);
  });

  test('where a message ends is part of the prefix', async () => {
    const system = 'You are a careful assistant.';
    await send({ messages: [{ role: 'system', content: `${system}\nuser: ${LONG}` }] });
    const framed = await send({ messages: [{ role: 'system', content: system }, { role: 'user', content: LONG }] });
    // Before: 1.0, both serialized to the same "system: ...\nuser: ...\n".
    assert.equal(framed.prefix, 0);
  });
});
