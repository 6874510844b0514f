// The Responses API's stored answers through the gateway, in front of three simulated servers that each keep their own
// (as vLLM does): follow-ups (previous_response_id) and reads of a response reach the server that stores it, on any
// replica sharing the store, and with API keys only the app that made it can reach it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway, type GatewayOptions } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, codeOf, createApp, until, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { apiKeyManifests, manifest, settings } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MODEL = 'm';

let fleet: SimFleet;

before(async () => {
  fleet = await startSimFleet({ replicas: 3, model: MODEL, timeScale: 50 });
});

after(async () => {
  await fleet?.close();
});

type Manifests = ReturnType<typeof manifest>[];

/** A gateway before the fleet (`moreSettings` joined to its GatewaySettings), once its picker sees every endpoint. */
async function gateway(extra: Manifests = [], options: Partial<GatewayOptions> = {}, moreSettings: Record<string, unknown> = {}): Promise<Gateway> {
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
      manifest('InferenceModel', MODEL, { modelName: MODEL, poolRef: { name: 'pool' } }),
      settings({ scheduler: { staleAfter: '5s' }, ...moreSettings }),
      ...extra,
    ],
    ...LOOPBACK,
    ...options,
  });
  await untilEndpoints(gw);
  return gw;
}

/** API keys on: one product, `opsExtra` added to its operation set. */
function keyManifests(opsExtra: Record<string, unknown> = {}): Manifests {
  return apiKeyManifests('p', { quota: { limit: 1000, interval: 1, timeUnit: 'minute' }, ...opsExtra });
}

/** API keys on (keyManifests) and two apps on the product: the owner `a` and another `b`. */
async function keyedGateway(extra: Manifests, opsExtra: Record<string, unknown> = {}): Promise<{ gw: Gateway; a: IssuedApp; b: IssuedApp }> {
  const gw = await gateway([...extra, ...keyManifests(opsExtra)]);
  const a = await createApp(gw.adminUrl, ['p'], 'owner');
  const b = await createApp(gw.adminUrl, ['p'], 'other');
  await untilKeyKnown(gw.url, a.key);
  await untilKeyKnown(gw.url, b.key);
  return { gw, a, b };
}

const create = (url: string, input: string, fields: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  call(url, 'POST', '/v1/responses', { model: MODEL, input, max_output_tokens: 6, ...fields }, headers);

/**
 * vLLM's own answer for an id it does not store (`_make_not_found_error`), which tollgate gives too for one it cannot
 * route or another app's, byte for byte: an app cannot tell the two apart.
 */
const notFound = (id: string) => ({ error: { message: `Response with id '${id}' not found.`, type: 'invalid_request_error', param: 'response_id', code: 404 } });

function assertNotFound(r: Answer, id: string, what = ''): void {
  assert.equal(r.status, 404, `${what} ${JSON.stringify(r.body)}`);
  assert.deepEqual(r.body, notFound(id), what);
}

/** Which simulated servers store `id`. */
const holders = (id: string) => fleet.servers.flatMap((s, i) => (s.responses.get(id) ? [i] : []));

describe('without API keys', () => {
  let gw: Gateway;
  before(async () => {
    gw = await gateway();
  });
  after(async () => {
    await gw?.close();
  });

  test('a chain of follow-ups reaches the server that stores each response, the conversation growing', async () => {
    let r = await create(gw.url, 'Tell me about tollgates.');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const first = holders(r.body.id);
    assert.equal(first.length, 1);
    let input = r.body.usage.input_tokens;
    // Picked freely, six follow-ups would all find their response with odds of 1 in 729.
    for (let i = 0; i < 6; i++) {
      r = await create(gw.url, `And then ${i}?`, { previous_response_id: r.body.id });
      assert.equal(r.status, 200, `follow-up ${i}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(holders(r.body.id), first);
      assert.ok(r.body.usage.input_tokens > input, 'the server continued the stored conversation');
      input = r.body.usage.input_tokens;
    }
  });

  test('a streamed creation is followed up too: its id is read from the stream', async () => {
    const res = await fetch(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, input: 'Stream it.', max_output_tokens: 6, stream: true }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const created = JSON.parse(/^data: (.*"response\.created".*)$/m.exec(text)![1]) as { response: { id: string } };
    const id = created.response.id;
    for (let i = 0; i < 4; i++) {
      const r = await create(gw.url, `More ${i}.`, { previous_response_id: id });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(holders(r.body.id), holders(id));
    }
  });

  test('GET, input_items, cancel and DELETE of a stored response reach its server; after DELETE it is not found', async () => {
    const made = await create(gw.url, 'Keep this one.');
    const id = made.body.id as string;
    for (let i = 0; i < 4; i++) {
      const got = await call(gw.url, 'GET', `/v1/responses/${id}`);
      assert.equal(got.status, 200, JSON.stringify(got.body));
      assert.equal(got.body.id, id);
      assert.deepEqual(got.body.output, made.body.output);
    }
    const items = await call(gw.url, 'GET', `/v1/responses/${id}/input_items`);
    assert.equal(items.status, 200);
    assert.equal(items.body.data[0].content[0].text, 'Keep this one.');
    // The server's own answer, passed through: a response that was not made in the background cannot be cancelled.
    const cancel = await call(gw.url, 'POST', `/v1/responses/${id}/cancel`);
    assert.equal(cancel.status, 400);
    const deleted = await call(gw.url, 'DELETE', `/v1/responses/${id}`);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.equal(deleted.body.deleted, true);
    assert.deepEqual(holders(id), []);
    // Its creation record still routes it to its server, which says it has it no more.
    const gone = await call(gw.url, 'GET', `/v1/responses/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.message, notFound(id).error.message);
  });

  test('an unknown id is 404 response_not_found; another method is 405 with allow; store: false is not remembered', async () => {
    assertNotFound(await call(gw.url, 'GET', '/v1/responses/resp_0123456789abcdef'), 'resp_0123456789abcdef');
    const put = await call(gw.url, 'PUT', '/v1/responses/resp_0123456789abcdef', {});
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, HEAD, DELETE');
    const getCancel = await call(gw.url, 'GET', '/v1/responses/resp_0123456789abcdef/cancel');
    assert.equal(getCancel.status, 405);
    assert.equal(getCancel.headers.allow, 'POST');
    const other = await call(gw.url, 'GET', '/v1/responses/resp_x/other');
    assert.equal(other.status, 404);
    assert.equal(codeOf(other), 'route_not_found');

    const unstored = await create(gw.url, 'Forget me.', { store: false });
    assert.equal(unstored.status, 200);
    assert.deepEqual(holders(unstored.body.id), []);
    assert.equal((await call(gw.url, 'GET', `/v1/responses/${unstored.body.id}`)).status, 404);
    assert.equal(gw.dataPlane.storedResponses.responses.get(unstored.body.id), undefined);
  });

  test('previous_response_id must be a string', async () => {
    const r = await create(gw.url, 'x', { previous_response_id: 42 });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /previous_response_id/);
  });
});

describe('with API keys', () => {
  let gw: Gateway;
  let a: IssuedApp;
  let b: IssuedApp;
  before(async () => {
    ({ gw, a, b } = await keyedGateway(
      [
        manifest('LLMTokenQuota', 'tokens', { limit: 1_000_000, timeUnit: 'day', countOn: 'total' }),
        manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
      ],
      { llmOperations: { models: [MODEL] } },
    ));
  });
  after(async () => {
    await gw?.close();
  });

  test("only the app that made a response reaches it; another app's follow-ups and reads find nothing", async () => {
    const made = await create(gw.url, 'Private.', {}, { 'x-api-key': a.key });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const id = made.body.id as string;

    const follow = await create(gw.url, 'Continue.', { previous_response_id: id }, { 'x-api-key': a.key });
    assert.equal(follow.status, 200, JSON.stringify(follow.body));
    assert.equal((await call(gw.url, 'GET', `/v1/responses/${id}`, undefined, { 'x-api-key': a.key })).status, 200);

    // B's follow-up would otherwise continue A's conversation wherever it was picked onto A's server.
    for (let i = 0; i < 3; i++) {
      const stolen = await create(gw.url, 'What did they say?', { previous_response_id: id }, { 'x-api-key': b.key });
      assertNotFound(stolen, id);
    }
    const read = await call(gw.url, 'GET', `/v1/responses/${id}`, undefined, { 'x-api-key': b.key });
    assert.equal(read.status, 404);
    const del = await call(gw.url, 'DELETE', `/v1/responses/${id}`, undefined, { 'x-api-key': b.key });
    assert.equal(del.status, 404);
    assert.deepEqual(holders(id).length, 1, "B's DELETE did not reach the server");

    // No key: refused before anything is looked up, as any request without one.
    const anonymous = await call(gw.url, 'GET', `/v1/responses/${id}`);
    assert.equal(anonymous.status, 401);
    const anonymousUnknown = await call(gw.url, 'GET', '/v1/responses/resp_0123456789abcdef');
    assert.equal(anonymousUnknown.status, 401);
  });

  test('reading a stored response charges no tokens, nor is it refused for them', async () => {
    // An app of its own: its token count starts at 0.
    const c = await createApp(gw.adminUrl, ['p'], 'reader');
    await untilKeyKnown(gw.url, c.key);
    const quota = async () => (await call(gw.url, 'GET', '/v1/tollgate/quota', undefined, { 'x-api-key': c.key })).body.quotas.find((q: { policy: string }) => q.policy === 'tokens');
    const made = await create(gw.url, 'Count me once.', {}, { 'x-api-key': c.key });
    assert.equal(made.status, 200);
    const used = await until(quota, (q) => q.used === made.body.usage.total_tokens, 5000, 'the creation reconciled');
    for (let i = 0; i < 3; i++) assert.equal((await call(gw.url, 'GET', `/v1/responses/${made.body.id}`, undefined, { 'x-api-key': c.key })).status, 200);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await quota()).used, used.used, 'three reads charged nothing');
  });

  test('with API keys a client may not choose a response id (vLLM makes request_id the id)', async () => {
    const r = await create(gw.url, 'Mine now.', { request_id: 'resp_someone_elses' }, { 'x-api-key': b.key });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /request_id/);
  });
});

describe('over ext_proc, Envoy sending the answers', () => {
  let gw: Gateway;
  let address: string;
  before(async () => {
    gw = await gateway([], { extprocPort: 0 });
    address = `127.0.0.1:${gw.extprocPort}`;
  });
  after(async () => {
    closeEnvoyClients();
    await gw?.close();
  });

  test('follow-ups and reads are sent to the endpoint that stored the response', async () => {
    const body = (fields: Record<string, unknown>) => JSON.stringify({ model: MODEL, input: 'Hello over Envoy.', max_output_tokens: 4, ...fields });
    const made = await envoyExchange(address, { path: '/v1/responses', body: body({}), headers: { 'content-type': 'application/json' }, responseBodyMode: 'BUFFERED' });
    assert.equal(made.status, 200);
    const id = JSON.parse(made.body.toString()).id as string;
    // The destination is the picked endpoint, then its fallbacks; a follow-up has no fallback: only its holder.
    const holder = made.destination!.split(',')[0];
    for (let i = 0; i < 5; i++) {
      const next = await envoyExchange(address, { path: '/v1/responses', body: body({ previous_response_id: id }), headers: { 'content-type': 'application/json' }, responseBodyMode: 'BUFFERED' });
      assert.equal(next.status, 200, next.body.toString());
      assert.equal(next.destination, holder);
    }
    const read = await envoyExchange(address, { method: 'GET', path: `/v1/responses/${id}`, responseBodyMode: 'BUFFERED' });
    assert.equal(read.status, 200, read.body.toString());
    assert.equal(read.destination, holder);
  });
});

// A policy decision point alone (--extproc-roles pdp): Envoy's own picker routes, so tollgate knows a response's
// endpoint only when Envoy reports it, but always its owner. It used to record neither: another app's follow-up went
// through, and every read was tollgate's own 404, the owner's too.
describe('with API keys over ext_proc, a policy decision point alone (Envoy picking the endpoint)', () => {
  let gw: Gateway;
  let a: IssuedApp;
  let b: IssuedApp;
  let address: string;
  before(async () => {
    gw = await gateway(keyManifests(), { extprocPort: 0, extproc: { roles: ['pdp'] } }, { analytics: { flushInterval: '10ms' } });
    a = await createApp(gw.adminUrl, ['p'], 'owner');
    b = await createApp(gw.adminUrl, ['p'], 'other');
    for (const app of [a, b]) await untilKeyKnown(gw.url, app.key);
    address = `127.0.0.1:${gw.extprocPort}`;
  });
  after(async () => {
    closeEnvoyClients();
    await gw?.close();
  });

  // Where Envoy's picker sent it, as Envoy would; `served` reported (or not) as the endpoint that answered.
  const exchange = (app: IssuedApp, method: string, path: string, fields?: Record<string, unknown>, served?: string) =>
    envoyExchange(address, {
      method,
      path,
      headers: { 'x-api-key': app.key, ...(fields && { 'content-type': 'application/json' }) },
      body: fields && JSON.stringify({ model: MODEL, input: 'Over Envoy.', max_output_tokens: 4, ...fields }),
      upstream: fleet.urls[1],
      served,
      responseBodyMode: 'BUFFERED',
    });

  test("the owner reads and continues its response through Envoy's routing; another app's follow-up, read, cancel and delete are 404", async () => {
    const made = await exchange(a, 'POST', '/v1/responses', {});
    assert.equal(made.status, 200, made.body.toString());
    const id = JSON.parse(made.body.toString()).id as string;
    const routing = gw.dataPlane.storedResponses;
    assert.equal(routing.responses.get(id)?.owner, `app:${a.appId}`);

    const others = async (when: string) => {
      for (const [method, path, fields] of [
        ['POST', '/v1/responses', { previous_response_id: id }],
        ['GET', `/v1/responses/${id}`, undefined],
        ['GET', `/v1/responses/${id}/input_items`, undefined],
        ['POST', `/v1/responses/${id}/cancel`, undefined],
        ['DELETE', `/v1/responses/${id}`, undefined],
      ] as const) {
        const r = await exchange(b, method, path, fields);
        assert.equal(r.local && r.status, 404, `${when}: ${method} ${path}: ${r.body.toString()}`);
        assert.deepEqual(JSON.parse(r.body.toString()), notFound(id));
      }
      const read = await exchange(a, 'GET', `/v1/responses/${id}`);
      assert.equal(!read.local && read.status, 200, `${when}: ${read.body.toString()}`);
      const next = await exchange(a, 'POST', '/v1/responses', { previous_response_id: id });
      assert.equal(!next.local && next.status, 200, `${when}: ${next.body.toString()}`);
    };
    await others('known in memory');
    // Another replica, or this one after a restart: the owner is in the creation's usage record.
    routing.responses.forget(id);
    const recorded = await until(() => routing.lookup(id), (l) => l.found !== undefined, 5000, 'the creation recorded');
    assert.equal(recorded.found?.owner, `app:${a.appId}`);
    routing.responses.forget(id);
    await others('known from the records');
    assert.deepEqual(holders(id), [1], "the other app's DELETE never reached the server");
  });

  test('the endpoint Envoy reports as served is where the response is recorded', async () => {
    const served = new URL(fleet.urls[1]).host;
    const made = await exchange(a, 'POST', '/v1/responses', {}, served);
    assert.equal(made.status, 200, made.body.toString());
    const id = JSON.parse(made.body.toString()).id as string;
    const routing = gw.dataPlane.storedResponses;
    const { input_tokens: input, output_tokens: output } = JSON.parse(made.body.toString()).usage;
    assert.deepEqual(routing.responses.get(id), { address: served, model: MODEL, owner: `app:${a.appId}`, tokens: input + output });
    routing.responses.forget(id);
    const recorded = await until(() => routing.lookup(id), (l) => l.found !== undefined, 5000, 'the creation recorded');
    assert.equal(recorded.found?.address, served);
  });
});

// Two gateways on one database, as replicas behind a load balancer (or one gateway before and after a restart): a
// response one of them saw made is found by the other in the usage records, with its owner.
for (const backend of DATABASE_BACKENDS) {
  describe(`across replicas sharing the ${backend.name} store`, { skip: backend.skip }, () => {
    let db: TestDatabase;
    let dirs: string[] = [];
    let replicas: Gateway[] = [];
    let a: IssuedApp;
    let b: IssuedApp;
    before(async () => {
      db = await backend.create();
      for (let i = 0; i < 2; i++) {
        const dir = await mkdtemp(join(tmpdir(), 'tollgate-stored-'));
        dirs.push(dir);
        const gw = await gateway(keyManifests(), { db: db.url, dbSchema: db.schema, analyticsDir: dir }, { analytics: { enabled: true, flushInterval: '10ms' } });
        replicas.push(gw);
        // Before the second starts, which loads them with the rest of the store (SQLite has no change feed between processes).
        if (i > 0) continue;
        a = await createApp(gw.adminUrl, ['p'], 'owner');
        b = await createApp(gw.adminUrl, ['p'], 'other');
      }
      for (const gw of replicas) for (const app of [a, b]) await untilKeyKnown(gw.url, app.key);
    });
    after(async () => {
      for (const gw of replicas) await gw.close();
      replicas = [];
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
      dirs = [];
      await db?.dispose();
    });

    test("the other replica sends follow-ups and reads to the holder once the creation is recorded; other apps' find nothing", async () => {
      const [first, second] = replicas;
      const made = await create(first.url, 'Made on the first replica.', {}, { 'x-api-key': a.key });
      assert.equal(made.status, 200, JSON.stringify(made.body));
      const id = made.body.id as string;
      // The record reaches the store through the analytics writer a moment after the answer.
      await until(() => call(second.url, 'GET', `/v1/responses/${id}`, undefined, { 'x-api-key': a.key }), (r) => r.status === 200, 30_000, 'the record stored');
      for (let i = 0; i < 5; i++) {
        const next = await create(second.url, `Continued on the second ${i}.`, { previous_response_id: id }, { 'x-api-key': a.key });
        assert.equal(next.status, 200, JSON.stringify(next.body));
        assert.deepEqual(holders(next.body.id), holders(id));
      }
      assertNotFound(await call(second.url, 'GET', `/v1/responses/${id}`, undefined, { 'x-api-key': b.key }), id);
    });
  });
}

// An HTTPRoute that takes the OpenAI paths (to the pool, as a Gateway API setup does, or to one URL) changes nothing:
// reads reach the holder and only the owner reaches them.
for (const backend of ['pool', 'url'] as const) {
  describe(`with API keys, behind an HTTPRoute to the ${backend === 'pool' ? 'InferencePool' : 'URL of one server'}`, () => {
    let gw: Gateway;
    let a: IssuedApp;
    let b: IssuedApp;
    before(async () => {
      const backendRef = backend === 'pool' ? { kind: 'InferencePool', name: 'pool' } : { url: fleet.urls[1] };
      ({ gw, a, b } = await keyedGateway([manifest('HTTPRoute', 'v1', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v1/' } }], backendRefs: [backendRef] }] })]));
    });
    after(async () => {
      await gw?.close();
    });

    test("the owner reads and continues it; another app's read, follow-up and delete find nothing", async () => {
      const made = await create(gw.url, 'Behind a route.', {}, { 'x-api-key': a.key });
      assert.equal(made.status, 200, JSON.stringify(made.body));
      const id = made.body.id as string;
      if (backend === 'url') assert.deepEqual(holders(id), [1]);
      for (let i = 0; i < 3; i++) {
        const read = await call(gw.url, 'GET', `/v1/responses/${id}`, undefined, { 'x-api-key': a.key });
        assert.equal(read.status, 200, JSON.stringify(read.body));
        const next = await create(gw.url, `On ${i}.`, { previous_response_id: id }, { 'x-api-key': a.key });
        assert.equal(next.status, 200, JSON.stringify(next.body));
      }
      // Escaped as the model server unescapes it: the same resource, the same check.
      const escaped = id.replace('_', '%5F');
      assert.equal((await call(gw.url, 'GET', `/v1/responses/${escaped}`, undefined, { 'x-api-key': a.key })).status, 200);
      for (const [method, path, body] of [
        ['GET', `/v1/responses/${escaped}`, undefined],
        ['DELETE', `/v1/responses/${escaped}`, undefined],
        ['GET', `/v1/responses/${id}`, undefined],
        ['GET', `/v1/responses/${id}/input_items`, undefined],
        ['DELETE', `/v1/responses/${id}`, undefined],
        ['POST', '/v1/responses', { model: MODEL, input: 'And?', previous_response_id: id }],
      ] as const) {
        assertNotFound(await call(gw.url, method, path, body, { 'x-api-key': b.key }), id, `${method} ${path}`);
      }
      assert.equal(holders(id).length, 1, "the other app's DELETE never reached the server");
    });
  });
}
