// Token quotas on requests whose answer never reached the client: a model server's 4xx/5xx (the reservation goes back,
// and the answer's headers say so), and a client that hangs up while the model server works on its request (charged
// its prompt, in the quota and in its usage record alike, as a stream cut short is charged what it got).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { countChatTokens } from '../src/lib/tokenizer.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { call, createApp, until, untilKeyKnown, tokenQuotaUsed } from './helpers/apim-admin.js';
import { tokenQuotaManifests } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MESSAGES = [{ role: 'user', content: 'hello there friend' }];
const PROMPT = countChatTokens(MESSAGES);
const MAX_TOKENS = 500;
/** tokenQuotaManifests' LLMTokenQuota. */
const LIMIT = 1_000_000;
let stub: Stub;
let gw: Gateway;
let dir: string;
let key: string;

before(async () => {
  stub = await startStub();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-no-answer-'));
  gw = await startGateway({
    configPaths: [],
    manifests: tokenQuotaManifests([stub.url]),
    ...LOOPBACK,
    logger: silentLogger,
    db: `sqlite:${join(dir, 'no-answer.db')}`,
    analyticsDir: join(dir, 'analytics'),
  });
  key = (await createApp(gw.adminUrl, ['p'], 'no-answer')).key;
  await untilKeyKnown(gw.url, key);
  await untilEndpoints(gw, undefined, 'pool');
});

after(async () => {
  await gw?.close();
  await stub?.close();
  rmSync(dir, { recursive: true, force: true });
});

const used = () => tokenQuotaUsed(gw.url, key);

test("a model server's 4xx or 5xx shows the token figures with the reservation given back, as the counter is", async () => {
  for (const status of [400, 503]) {
    stub.handler = (r) => json(r.res, status, { error: { message: 'no', type: 'invalid_request_error' } });
    const start = await used();
    const a = await call(gw.url, 'POST', '/v1/chat/completions', { model: 'chat', messages: MESSAGES, max_tokens: MAX_TOKENS }, { 'x-api-key': key });
    assert.equal(a.status, status);
    // Before: LIMIT - start - PROMPT - MAX_TOKENS, the reservation shown as spent.
    assert.equal(a.headers['x-ratelimit-remaining-tokens'], String(LIMIT - start), String(status));
    assert.equal(a.headers['x-ratelimit-limit-tokens'], String(LIMIT));
    assert.equal(await until(used, (u) => u === start, 5_000, 'the reservation given back'), start);
  }
});

test("the gateway's own 502 after a model server's 2xx head shows the reservation given back, as the counter is", async () => {
  // A 2xx head, then the connection dies before any body byte: the client gets the gateway's 502 instead.
  stub.handler = (r) => {
    r.res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
    setTimeout(() => r.res.socket?.destroy(), 20);
  };
  const start = await used();
  const a = await call(gw.url, 'POST', '/v1/chat/completions', { model: 'chat', messages: MESSAGES, max_tokens: MAX_TOKENS }, { 'x-api-key': key });
  assert.equal(a.status, 502);
  // Before: LIMIT - start - PROMPT - MAX_TOKENS, the reservation shown as spent.
  assert.equal(a.headers['x-ratelimit-remaining-tokens'], String(LIMIT - start));
  assert.equal(await until(used, (u) => u === start, 5_000, 'the reservation given back'), start);
});

for (const stream of [false, true]) {
  test(`a client that hangs up while the model server works on its ${stream ? 'stream (before its first token)' : 'non-streamed request'} is charged its prompt, in the quota and its usage record alike`, async () => {
    // vLLM sends a non-streamed answer's head once the generation is over, a stream's at once and its first byte with
    // the first token: before, a client that hung up before then was charged nothing, however long the server worked.
    stub.handler = (r) => {
      if (stream) r.res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
    };
    const start = await used();
    const seen = stub.requests.length;
    const id = `no-answer-${stream}-${Date.now()}`;
    const abort = new AbortController();
    const res = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-request-id': id },
      body: JSON.stringify({ model: 'chat', stream, max_tokens: MAX_TOKENS, messages: MESSAGES }),
    }).catch(() => undefined);
    await until(async () => stub.requests.length, (n) => n > seen, 5_000, 'the model server has the request');
    abort.abort();
    await res;

    const charged = (await until(used, (u) => u - start < PROMPT + MAX_TOKENS, 5_000, 'the reservation settled')) - start;
    await gw.analytics!.flush();
    const records = new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records');
    const [row] = await until(
      () => records.select(['status', 'fault_code', 'input_tokens', 'output_tokens', 'tokens_estimated']).where('request_id', '=', id).execute(),
      (r) => r.length === 1,
      10_000,
      'the usage record',
    );
    assert.equal(charged, PROMPT, 'the prompt as the token quota counted it');
    assert.deepEqual(
      [row.status, row.fault_code, Number(row.input_tokens), Number(row.output_tokens), row.tokens_estimated],
      [null, 'client_closed', PROMPT, 0, 1],
      'the record carries what the quota charged',
    );
  });
}
