// Requests on stored responses as the data plane decides them: credentials before any records lookup, and OpenAI's
// other operations below /v1/responses/ passed on, their previous_response_id checked.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { Registry } from 'prom-client';
import { AnalyticsPipeline } from '../analytics/pipeline.js';
import { Spool } from '../analytics/spool.js';
import { sampleRecord, tempSpoolDirectory, testSettings } from '../analytics/test-records.js';
import { openDatabase } from '../store/index.js';
import { manifestOf } from '../config/manifest.js';
import { compileConfig } from '../config/runtime-config.js';
import { silentLogger } from '../lib/logger.js';
import { RoundRobinPicker } from '../scheduler/round-robin.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import type { RequestContext } from './context.js';
import { DataPlane, newContext, routeRequest, type Decision } from './data-plane.js';
import { policyFault, type GatewayError } from './errors.js';
import type { GatewayHooks } from './hooks.js';
import type { RecordedResponse } from './stored-responses.js';
import { UpstreamPools } from './upstream-pools.js';

const m = (kind: string, name: string, spec: unknown) => manifestOf(kind, name, spec, 'test');

const config = compileConfig([
  m('InferencePool', 'pool', { endpoints: ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'] }),
  m('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
  m('HTTPRoute', 'openai', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v1/responses/' } }], backendRefs: [{ url: 'https://api.example.com' }] }] }),
  m('GatewaySettings', 'settings', { analytics: { flushInterval: '10ms' } }),
]);

/** API keys as the policy engine checks them: `key-<app>` is app <app>'s, anything else a 401. */
const hooks: GatewayHooks = {
  authenticate(ctx) {
    const key = ctx.headers['x-api-key'];
    if (typeof key !== 'string' || !key.startsWith('key-')) throw policyFault(401, 'oauth.v2.InvalidApiKey', 'Invalid ApiKey');
    ctx.apim = { key: { appId: key.slice(4) } } as RequestContext['apim'];
  },
};

function dataPlane(find: (id: string) => Promise<RecordedResponse | undefined>, analytics?: AnalyticsPipeline): DataPlane {
  return new DataPlane({ config, picker: new RoundRobinPicker(), pools: new UpstreamPools(config.settings), metrics: new RequestMetrics(new Registry()), logger: silentLogger, hooks, findResponse: find, analytics });
}

async function decide(dp: DataPlane, method: string, path: string, key?: string, body?: unknown): Promise<Decision> {
  const ctx = newContext(method, path, { 'content-type': 'application/json', ...(key && { 'x-api-key': key }) }, '127.0.0.1');
  routeRequest(config, ctx);
  return dp.decide(ctx, Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? '' : JSON.stringify(body)));
}

const status = (err: unknown) => (err as GatewayError).status;

describe('the data plane on stored responses', () => {
  test('a request without a valid key costs no records lookup: its credentials are checked first', async () => {
    const asked: string[] = [];
    const dp = dataPlane(async (id) => (asked.push(id), id === 'resp_a' ? { endpoint: 'api.example.com:443', app_id: 'A', model: 'm' } : undefined));
    for (let i = 0; i < 20; i++) {
      // Before: each was one query, and 8 at once took every lookup slot from the apps with keys (503s).
      await assert.rejects(decide(dp, 'GET', `/v1/responses/resp_${i}`), (e) => status(e) === 401);
      await assert.rejects(decide(dp, 'DELETE', `/v1/responses/resp_${i}`, 'wrong'), (e) => status(e) === 401);
    }
    assert.deepEqual(asked, []);
    const own = await decide(dp, 'GET', '/v1/responses/resp_a', 'key-A');
    assert.equal(own.kind === 'url' && own.endpoints[0].address, 'api.example.com:443');
    await assert.rejects(decide(dp, 'GET', '/v1/responses/resp_a', 'key-B'), (e) => status(e) === 404);
    assert.deepEqual(asked, ['resp_a'], 'looked up once, then known');
  });

  test("input_tokens and compact go to the route's URL; a previous_response_id they name is checked as a follow-up's", async () => {
    const dp = dataPlane(async (id) => (id === 'resp_a' ? { endpoint: 'api.example.com:443', app_id: 'A', model: 'm' } : undefined));
    for (const path of ['/v1/responses/input_tokens', '/v1/responses/compact', '/v1/responses/input%5Ftokens']) {
      // Before: taken for a response id, a POST of it was a 405 naming GET, HEAD, DELETE.
      const plain = await decide(dp, 'POST', path, 'key-B', { model: 'm', input: 'How long is this?' });
      assert.equal(plain.kind === 'url' && plain.endpoints[0].address, 'api.example.com:443', path);
      const own = await decide(dp, 'POST', path, 'key-A', { model: 'm', input: 'x', previous_response_id: 'resp_a' });
      assert.equal(own.kind, 'url', path);
      // Passed on, it would have the server read (or compact) A's conversation for B.
      await assert.rejects(decide(dp, 'POST', path, 'key-B', { model: 'm', previous_response_id: 'resp_a' }), (e) => status(e) === 404, path);
    }
    await assert.rejects(decide(dp, 'POST', '/v1/responses/compact/cancel', 'key-A'), (e) => status(e) === 404);
  });

  test('their body is read as every request body is, and one that does not parse is refused, not passed on unchecked', async () => {
    const dp = dataPlane(async (id) => (id === 'resp_a' ? { endpoint: 'api.example.com:443', app_id: 'A', model: 'm' } : undefined));
    const fields = JSON.stringify({ model: 'm', previous_response_id: 'resp_a' });
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(fields)]);
    for (const path of ['/v1/responses/input_tokens', '/v1/responses/compact']) {
      // Before: JSON.parse refused the byte order mark, and the body went to the server unchecked, which reads it.
      await assert.rejects(decide(dp, 'POST', path, 'key-B', bom), (e) => status(e) === 404, path);
      assert.equal((await decide(dp, 'POST', path, 'key-A', bom)).kind, 'url', path);
      // A server may read what tollgate cannot (Python's json reads UTF-16): refused rather than passed on.
      for (const body of [Buffer.from(fields, 'utf16le'), Buffer.from('not json'), Buffer.alloc(0)]) {
        await assert.rejects(decide(dp, 'POST', path, 'key-B', body), (e) => status(e) === 400 && (e as GatewayError).code === 'invalid_json', `${path} ${body.toString('hex', 0, 8)}`);
      }
    }
  });

  test('after a crash, the creations the spool still holds are known before any request, not only once replayed', async () => {
    const dir = tempSpoolDirectory();
    mkdirSync(dir, { recursive: true });
    const left = new Spool(dir, { segmentBytes: 1 << 20, maxDiskBytes: 1 << 30 });
    left.appendLines([`${JSON.stringify(sampleRecord(1, { operation: 'responses', model: 'm', responseId: 'resp_spooled', appId: 'A', endpoint: 'api.example.com:443' }))}\n`]);
    left.close();
    const db = await openDatabase('sqlite::memory:');
    const pipeline = new AnalyticsPipeline({ db, settings: testSettings(dir, { flushInterval: '1h' }), registry: new Registry() });
    // The records table has nothing yet: the spool is replayed into it after the gateway is serving.
    const dp = dataPlane(async () => undefined, pipeline);
    try {
      pipeline.start();
      // Before: unknown until replayed, A's read was a 404 and B's follow-up was sent on.
      const own = await decide(dp, 'GET', '/v1/responses/resp_spooled', 'key-A');
      assert.equal(own.kind === 'url' && own.endpoints[0].address, 'api.example.com:443');
      await assert.rejects(decide(dp, 'GET', '/v1/responses/resp_spooled', 'key-B'), (e) => status(e) === 404);
    } finally {
      await pipeline.close();
      await db.close();
    }
  });
});
