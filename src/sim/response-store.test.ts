import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimServer, type SimServer } from './server.js';
import { SimResponseStore } from './response-store.js';

let sim: SimServer;
before(async () => {
  sim = await startSimServer({ model: 'm', timeScale: 50 });
});
after(() => sim.close());

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${sim.url}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json() };
}

test('a stored response is continued, read, listed and deleted; an unknown one is 404 as vLLM says it', async () => {
  const first = await call('POST', '/v1/responses', { model: 'm', input: 'One two three.', instructions: 'Be brief.', max_output_tokens: 4 });
  assert.equal(first.status, 200);
  assert.equal(first.body.store, true);
  const next = await call('POST', '/v1/responses', { model: 'm', input: 'Four.', previous_response_id: first.body.id, max_output_tokens: 4 });
  assert.equal(next.status, 200);
  assert.equal(next.body.previous_response_id, first.body.id);
  // The stored turn (its input and answer) is part of the follow-up's prompt.
  const alone = await call('POST', '/v1/responses', { model: 'm', input: 'Four.', max_output_tokens: 4, store: false });
  assert.equal(alone.body.store, false);
  assert.ok(next.body.usage.input_tokens > alone.body.usage.input_tokens + first.body.usage.output_tokens);
  assert.equal(sim.responses.get(alone.body.id), undefined);

  assert.deepEqual((await call('GET', `/v1/responses/${first.body.id}`)).body, first.body);
  const items = await call('GET', `/v1/responses/${first.body.id}/input_items`);
  assert.deepEqual(items.body.data, [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'One two three.' }] }]);
  assert.equal((await call('POST', `/v1/responses/${first.body.id}/cancel`)).status, 400);
  assert.equal((await call('PUT', `/v1/responses/${first.body.id}`)).status, 405);
  assert.deepEqual((await call('DELETE', `/v1/responses/${first.body.id}`)).body, { id: first.body.id, object: 'response', deleted: true });

  const gone = await call('GET', `/v1/responses/${first.body.id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Response with id '${first.body.id}' not found.`);
  const orphan = await call('POST', '/v1/responses', { model: 'm', input: 'x', previous_response_id: first.body.id });
  assert.equal(orphan.status, 404);
});

test('a streamed response is stored once it completes', async () => {
  const res = await fetch(`${sim.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', input: 'Stream.', stream: true, max_output_tokens: 3 }) });
  const text = await res.text();
  const id = /"id":"(resp_[^"]+)"/.exec(text)![1];
  assert.equal(sim.responses.get(id)?.response.status !== undefined, true);
});

test('the store forgets its oldest answers past its bound', () => {
  const store = new SimResponseStore(2);
  for (const id of ['a', 'b', 'c']) store.put({ response: { id }, conversation: [], inputItems: [] });
  assert.equal(store.get('a'), undefined);
  assert.ok(store.get('b') && store.get('c'));
});
