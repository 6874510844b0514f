// Telemetry settings through a real gateway: prompt and completion text reach the access log only with
// logging.logPrompts on; metrics.requests off leaves the per-request series out of /metrics.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const PROMPT = 'What is the capital of Elbonia?';
const ANSWER = 'Elbonia has no capital city.';

let stub: Stub;
before(async () => {
  stub = await startStub((r) => {
    if (!r.body?.stream) return json(r.res, 200, { choices: [{ index: 0, message: { role: 'assistant', content: ANSWER } }], usage: { prompt_tokens: 9, completion_tokens: 6 } });
    r.res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const word of ANSWER.split(/(?= )/)) r.res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: word } }] })}\n\n`);
    r.res.end(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 6 } })}\n\ndata: [DONE]\n\n`);
  });
});
after(() => stub.close());

async function withGateway(logging: Record<string, unknown>, run: (gw: Gateway) => Promise<void>, more: Record<string, unknown> = {}): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stub.url]), settings({ logging, ...more })],
    ...LOOPBACK,
    logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
  });
  try {
    await run(gw);
  } finally {
    await gw.close();
  }
  assert.ok(lines.every((l) => !l.includes(PROMPT) || logging.logPrompts), 'the prompt is in no line unless logPrompts is on');
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
}

const chat = async (gw: Gateway, stream: boolean) => {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', stream, messages: [{ role: 'user', content: PROMPT }] }) });
  assert.equal(r.statusCode, 200);
  await r.body.text();
};

test('by default the access log has no prompt or completion text', async () => {
  const access = await withGateway({}, async (gw) => {
    await chat(gw, false);
    await chat(gw, true);
  });
  assert.equal(access.length, 2);
  for (const line of access) {
    assert.equal(line.prompt, undefined);
    assert.equal(line.completion, undefined);
    assert.equal(JSON.stringify(line).includes(ANSWER), false);
  }
});

test('with logging.logPrompts the access log carries the prompt and the answer, whole or streamed', async () => {
  const access = await withGateway({ logPrompts: true }, async (gw) => {
    await chat(gw, false);
    await chat(gw, true);
  });
  assert.equal(access.length, 2);
  for (const line of access) {
    assert.match(String(line.prompt), new RegExp(PROMPT.replace('?', '\\?')));
    assert.equal(line.completion, ANSWER);
    assert.equal(line.outputTokens, 6);
  }
});

test('metrics.requests off: no per-request series, while the pool figures stay', async () => {
  const scrape = async (gw: Gateway) => {
    await chat(gw, false);
    return (await request(`${gw.adminUrl}/metrics`)).body.text();
  };
  let on = '';
  let off = '';
  await withGateway({}, async (gw) => void (on = await scrape(gw)));
  await withGateway({}, async (gw) => void (off = await scrape(gw)), { metrics: { requests: false } });
  const series = /^(inference_objective_request_total|inference_objective_request_duration_seconds_count|tollgate_requests_total)\{/m;
  assert.match(on, series);
  assert.doesNotMatch(off, series);
  assert.match(off, /^inference_pool_ready_pods\{name="pool"\} 1$/m);
});
