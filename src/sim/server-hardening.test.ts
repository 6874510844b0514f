// What a client can send, and what can go wrong while answering it, ends that one request: never the process (every
// replica of a fleet runs in it), never the connection where an answer is due.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startSimServer, type SimServer } from './server.js';
import { postJson, sseData, waitFor } from './testing.js';

const MODEL = 'sim-model';

/** A Responses request whose `text` (echoed in the answer) nests `depth` objects deep. */
function nested(depth: number, stream = false): string {
  const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  return `{"model":"${MODEL}","input":"hi","max_output_tokens":3,"stream":${stream},"text":{"format":{"type":"text"},"x":${deep}}}`;
}

/** POSTs `body` with node:http (a body fetch would refuse to build is fine here) and reads the whole answer. */
function post(url: string, body: Buffer | string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Before these fixes the process died, or (the test runner catching the throw) the request went unanswered: a
// timeout makes that a failure rather than a hang.
describe('sim server: a request fails alone', { timeout: 30_000 }, () => {
  let sim: SimServer;
  before(async () => {
    sim = await startSimServer({ model: MODEL, timeScale: 50 });
  });
  after(() => sim.close());

  const alive = async () => {
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    await waitFor(() => sim.state().running === 0 && sim.state().waiting === 0, 5000, 'every sequence ended');
  };

  test('a body nested past the gateway bound (512) is a 400; before, 6,000 levels ended the process in JSON.stringify', async () => {
    for (const stream of [false, true]) {
      const refused = await post(`${sim.url}/v1/responses`, nested(6000, stream));
      assert.equal(refused.status, 400, refused.text);
      assert.match(JSON.parse(refused.text).error.message, /nests deeper than 512 levels/);
    }
    const within = await post(`${sim.url}/v1/responses`, nested(500));
    assert.equal(within.status, 200, within.text.slice(0, 200));
    await alive();
  });

  test('a throw while the engine finishes an answer: a 500 for it (a cut stream when streaming), the server serves on', async () => {
    const put = sim.responses.put;
    sim.responses.put = () => {
      throw new Error('store failed');
    };
    try {
      const whole = await postJson(`${sim.url}/v1/responses`, { model: MODEL, input: 'hi', max_output_tokens: 3 });
      assert.equal(whole.status, 500);
      assert.deepEqual((await whole.json()).error, { message: 'Error: store failed', type: 'InternalServerError', param: null, code: 500 });

      const streamed = await postJson(`${sim.url}/v1/responses`, { model: MODEL, input: 'hi', max_output_tokens: 3, stream: true });
      assert.equal(streamed.status, 200);
      const events: string[] = [];
      await assert.rejects(async () => {
        for await (const data of sseData(streamed)) events.push(data);
      });
      assert.ok(!events.some((e) => e.includes('response.completed')), 'the stream is cut before it completes');
    } finally {
      sim.responses.put = put;
    }
    await alive();
    const chat = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'still there?' }], max_tokens: 2 });
    assert.equal(chat.status, 200);
  });

  test('a throw in a request listener (a stored response read) is a 500, not the end of the process', async () => {
    const get = sim.responses.get;
    sim.responses.get = () => {
      throw new Error('lookup failed');
    };
    try {
      const res = await fetch(`${sim.url}/v1/responses/resp_x/input_items`);
      assert.equal(res.status, 500);
      assert.equal((await res.json()).error.message, 'Error: lookup failed');
    } finally {
      sim.responses.get = get;
    }
    await alive();
  });

  test('a body over 32 MiB is answered 413, not reset while the client still sends it', async () => {
    const res = await post(`${sim.url}/v1/chat/completions`, Buffer.alloc(33 * 1024 * 1024, 0x20));
    assert.equal(res.status, 413);
    assert.deepEqual(JSON.parse(res.text).error, { message: 'The request body is too large', type: 'RequestEntityTooLargeError', param: null, code: 413 });
    await alive();
  });

  test('as vLLM (FastAPI): an unknown path is a 404 whatever the method; a known one is a 405 for another method', async () => {
    for (const [method, path, status] of [
      ['POST', '/v1/load_lora_adapter', 404],
      ['POST', '/tokenize', 404],
      ['DELETE', '/nope', 404],
      ['GET', '/nope', 404],
      ['GET', '/v1/chat/completions', 405],
      ['POST', '/health', 405],
      ['POST', '/v1/models', 405],
    ] as const) {
      const res = await fetch(`${sim.url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      assert.equal(res.status, status, `${method} ${path}`);
      assert.equal((await res.json()).error.code, status);
    }
  });
});
