// A stream that reached its client and ended without its usage chunk (the client hung up): the token quota and the
// usage record agree on tollgate's estimate — the prompt as tollgate counts it plus the output tokens streamed — where
// the quota kept the whole reservation (prompt + max_tokens) and the record had no tokens at all.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { countChatTokens } from '../src/lib/tokenizer.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { createApp, until, untilKeyKnown, tokenQuotaUsed } from './helpers/apim-admin.js';
import { tokenQuotaManifests } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MESSAGES = [{ role: 'user', content: 'hello there friend' }];
const MAX_TOKENS = 2000;
let fleet: SimFleet;
let gw: Gateway;
let dir: string;
let key: string;

before(async () => {
  // Real time: a 2,000-token answer takes many seconds, so the client hangs up long before its usage chunk.
  fleet = await startSimFleet({ replicas: 1, model: 'base-model', timeScale: 1 });
  dir = mkdtempSync(join(tmpdir(), 'tollgate-cut-'));
  gw = await startGateway({
    configPaths: [],
    manifests: tokenQuotaManifests(fleet.urls),
    ...LOOPBACK,
    db: `sqlite:${join(dir, 'cut.db')}`,
    analyticsDir: join(dir, 'analytics'),
  });
  key = (await createApp(gw.adminUrl, ['p'], 'cut')).key;
  await untilKeyKnown(gw.url, key);
  await untilEndpoints(gw, undefined, 'pool');
});

after(async () => {
  await gw?.close();
  await fleet?.close();
  rmSync(dir, { recursive: true, force: true });
});

const used = () => tokenQuotaUsed(gw.url, key);

/** Streams MAX_TOKENS, reads three tokens, hangs up; checks the quota and the record charge prompt + tokens streamed. */
async function abandonedStreamCharged(extra: Record<string, unknown>): Promise<void> {
  const start = await used();
  const id = `cut-${Date.now()}`;
  const abort = new AbortController();
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    signal: abort.signal,
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-request-id': id },
    body: JSON.stringify({ model: 'chat', stream: true, max_tokens: MAX_TOKENS, ignore_eos: true, messages: MESSAGES, ...extra }),
  });
  assert.equal(res.status, 200);
  // A few tokens, then the client hangs up.
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/"content":"[^"]/g) ?? []).length < 3) text += decoder.decode((await reader.read()).value, { stream: true });
  const streamed = (text.match(/"content":"[^"]/g) ?? []).length;
  abort.abort();

  // Settled once the counter no longer holds the whole reservation.
  const prompt = countChatTokens(MESSAGES);
  const charged = (await until(used, (u) => u - start < prompt + MAX_TOKENS, 10_000, 'the reservation settled')) - start;
  await gw.analytics!.flush();
  const records = new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records');
  const rows = await until(
    () => records.select(['status', 'fault_code', 'input_tokens', 'output_tokens', 'cached_tokens', 'tokens_estimated']).where('request_id', '=', id).execute(),
    (r) => r.length === 1,
    10_000,
    'the usage record',
  );
  const [row] = rows;
  assert.deepEqual([row.status, row.fault_code, row.cached_tokens, row.tokens_estimated], [200, 'client_closed', null, 1]);
  const [input, output] = [Number(row.input_tokens), Number(row.output_tokens)];
  // Before: the record had no tokens, and the quota kept prompt + 2,000.
  assert.equal(charged, input + output, 'the quota charged what the record says');
  assert.equal(input, prompt, "the prompt as tollgate's token quota counted it");
  assert.ok(output >= streamed && output < MAX_TOKENS, `${output} output tokens for ${streamed} the client read`);
}

test('a stream the client abandons is charged, in the quota and in its usage record alike, its prompt and the tokens streamed', async () => {
  await abandonedStreamCharged({});
});

test('so is one whose client asked for usage as vLLM reads `stream_options: {}` (usage included), not as OpenAI does', async () => {
  // tollgate sends such a request as it is to a vLLM pool: the client's own usage chunk is the one that never came.
  // Before: nobody was taken to have asked for usage, so the record had no tokens and the quota kept prompt + 2,000.
  await abandonedStreamCharged({ stream_options: {} });
});
