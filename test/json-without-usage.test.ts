// A whole JSON answer whose model server reported no usage: the token quota and the usage record agree on tollgate's
// estimate — the prompt as tollgate counts it plus the tokens of the generated text — where the quota kept the whole
// reservation (prompt + max_tokens) and the record had no tokens at all (a stream without its usage chunk was
// already estimated). A Responses background creation, answered `queued` before it generates, keeps its reservation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { countChatTokens, countTextTokens } from '../src/lib/tokenizer.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { createApp, until, untilKeyKnown, tokenQuotaUsed } from './helpers/apim-admin.js';
import { tokenQuotaManifests } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';

const MESSAGES = [{ role: 'user', content: 'hello there friend' }];
const MAX_TOKENS = 2000;
const ANSWER = 'Greetings, friend! How may I help you on this fine day?';
let stub: Stub;
let gw: Gateway;
let dir: string;
let key: string;

before(async () => {
  // A model server that never reports usage, as some OpenAI-compatible servers do not.
  stub = await startStub((r) => {
    if (r.req.url === '/v1/responses') return json(r.res, 200, { id: 'resp_1', object: 'response', status: 'queued', output: [] });
    if (r.req.url === '/v1/embeddings') return json(r.res, 200, { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }] });
    json(r.res, 200, { id: 'c1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }] });
  });
  dir = mkdtempSync(join(tmpdir(), 'tollgate-nousage-'));
  gw = await startGateway({ configPaths: [], manifests: tokenQuotaManifests([stub.url]), ...LOOPBACK, db: `sqlite:${join(dir, 'n.db')}`, analyticsDir: join(dir, 'analytics') });
  key = (await createApp(gw.adminUrl, ['p'], 'nousage')).key;
  await untilKeyKnown(gw.url, key);
  await untilEndpoints(gw, undefined, 'pool');
});

after(async () => {
  await gw?.close();
  await stub?.close();
  rmSync(dir, { recursive: true, force: true });
});

const used = () => tokenQuotaUsed(gw.url, key);

/** Sends `body` to `path`; answers the quota's charge for it and its usage record's tokens. */
async function charged(path: string, body: Record<string, unknown>) {
  const start = await used();
  const id = `nousage-${path.slice(4)}-${Date.now()}`;
  const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-request-id': id }, body: JSON.stringify({ model: 'chat', ...body }) });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await gw.analytics!.flush();
  const records = new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records');
  const [row] = await until(
    () => records.select(['input_tokens', 'output_tokens', 'tokens_estimated']).where('request_id', '=', id).execute(),
    (r) => r.length === 1,
    10_000,
    'the usage record',
  );
  return { charge: (await used()) - start, input: row.input_tokens === null ? null : Number(row.input_tokens), output: row.output_tokens === null ? null : Number(row.output_tokens), estimated: row.tokens_estimated };
}

test('a chat answer without usage is charged its prompt and the tokens of its text, in the quota and the record alike', async () => {
  const got = await charged('/v1/chat/completions', { max_tokens: MAX_TOKENS, messages: MESSAGES });
  // Before: the quota kept prompt + 2,000 and the record had no tokens.
  assert.deepEqual(got, { charge: countChatTokens(MESSAGES) + countTextTokens(ANSWER), input: countChatTokens(MESSAGES), output: countTextTokens(ANSWER), estimated: 1 });
});

test('an embeddings answer without usage is charged its input alone', async () => {
  const got = await charged('/v1/embeddings', { input: 'hello there friend' });
  assert.equal(got.estimated, 1);
  assert.equal(got.output, 0);
  assert.ok(got.input! > 0 && got.charge === got.input, JSON.stringify(got));
});

test('a Responses background creation (queued, no output yet) keeps its whole reservation: its generation is still to come', async () => {
  const got = await charged('/v1/responses', { input: 'hello there friend', background: true, max_output_tokens: MAX_TOKENS });
  assert.deepEqual([got.input, got.output, got.estimated], [null, null, 0]);
  assert.ok(got.charge >= MAX_TOKENS, `charged ${got.charge}: the reservation stands`);
});
