// A client that hangs up while its request waits for a connection to a model server (all of the endpoint's
// connections busy) was never sent: it is not charged its prompt as one the model server worked on is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { waitFor } from '../src/sim/testing.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { createApp, tokenQuotaUsed, until, untilKeyKnown } from './helpers/apim-admin.js';
import { settings, tokenQuotaManifests } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { json, startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const ANSWER = { id: 'x', object: 'chat.completion', model: 'base-model', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } };

test('a hang-up while the request waits for a connection upstream charges nothing', async () => {
  let answerFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => (answerFirst = resolve));
  // The first request holds the endpoint's only connection until the test lets it go.
  const stub = await startStub(async (r) => {
    await firstHeld;
    json(r.res, 200, ANSWER);
  });
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-unsent-'));
  const gw = await startGateway({
    configPaths: [],
    manifests: [...tokenQuotaManifests([stub.url]), settings({ upstream: { connectionsPerEndpoint: 1 } })],
    ...LOOPBACK,
    logger: silentLogger,
    db: `sqlite:${join(dir, 'unsent.db')}`,
    analyticsDir: join(dir, 'analytics'),
  });
  try {
    const key = (await createApp(gw.adminUrl, ['p'], 'unsent')).key;
    await untilKeyKnown(gw.url, key);
    await untilEndpoints(gw, undefined, 'pool');
    const used = () => tokenQuotaUsed(gw.url, key);
    const send = (id: string, signal?: AbortSignal) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        signal,
        headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-request-id': id },
        body: JSON.stringify({ model: 'chat', max_tokens: 500, messages: [{ role: 'user', content: 'hello there friend' }] }),
      }).then(
        (r) => r.text(),
        () => 'aborted',
      );
    const first = send('first');
    await waitFor(() => stub.requests.length === 1, 5000, 'the first request upstream');
    const abort = new AbortController();
    const second = send('second', abort.signal);
    // Admitted (its reservation counted) and waiting behind the first for the connection.
    await until(used, (u) => u > 1000, 5000, 'both reserved');
    abort.abort();
    assert.equal(await second, 'aborted');
    answerFirst();
    await first;
    assert.equal(stub.requests.length, 1, 'the second was never sent');
    // Only the first's real usage stays.
    assert.equal(await until(used, (u) => u < 1000, 5000, 'the reservations settled'), 6);
    await gw.analytics!.flush();
    const row = await new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records').select(['fault_code', 'input_tokens', 'tokens_estimated']).where('request_id', '=', 'second').executeTakeFirst();
    assert.equal(row?.fault_code, 'client_closed');
    assert.equal(row?.input_tokens ?? null, null);
  } finally {
    answerFirst();
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
