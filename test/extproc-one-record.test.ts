// One usage record per request where tollgate plays more than one part of it on one database: Envoy with tollgate's
// endpoint picker and its policy decision point as two ext_proc filters, and a data plane calling a tollgate policy
// decision point through an ExtensionChain. The picker, and the listener a tollgate calls, write none: counts and
// tokens (billing) were doubled, and the picker's record, first and naming no app, made another app's stored
// response reachable on every other replica.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { recordRow } from '../src/analytics/record.js';
import type { Manifest } from '../src/config/manifest.js';
import { sampleRecord } from '../src/analytics/test-records.js';
import type { ExtprocRole } from '../src/extproc/server.js';
import type { CommonResponse, ProcessingResponse } from '../src/extproc/messages.js';
import { toStruct } from '../src/extproc/struct.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, createApp, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { applyMutation, closeEnvoyClients, envoyClient, envoyEnd, headerMap } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest, settings } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MODEL = 'm';

let fleet: SimFleet;

before(async () => {
  fleet = await startSimFleet({ replicas: 2, model: MODEL, timeScale: 50 });
});

after(async () => {
  closeEnvoyClients();
  await fleet?.close();
});

interface Answer {
  status: number;
  local: boolean;
  body: { id?: string; error?: { code?: string } };
  destination?: string;
}

const common = (a: ProcessingResponse): CommonResponse => (a[a.response as 'request_body'] as { response?: CommonResponse } | undefined)?.response ?? {};

/**
 * One exchange through Envoy with an ext_proc filter per gateway in `filters` (the picker's first): the request through
 * each in order, to the endpoint the picker named, and the answer back through them in reverse, with the endpoint that
 * served reported to each.
 */
async function viaEnvoy(filters: Gateway[], method: string, path: string, headers: Record<string, string>, fields?: Record<string, unknown>): Promise<Answer> {
  let body: Buffer | undefined = fields && Buffer.from(JSON.stringify({ model: MODEL, max_output_tokens: 4, ...fields }));
  const sent = new Map(Object.entries(headers));
  if (body) sent.set('content-type', 'application/json');
  const calls = filters.map((gw) => envoyClient(`127.0.0.1:${gw.extprocPort}`).open(10_000));
  try {
    for (const call of calls) {
      const pairs: [string, string][] = [[':method', method], [':path', path], [':authority', 'gw'], [':scheme', 'http'], ...sent];
      let a = await call.send({ request_headers: { headers: headerMap(pairs), end_of_stream: !body } });
      if (body && !a.immediate_response) {
        applyMutation(sent, common(a).header_mutation);
        a = await call.send({ request_body: { body, end_of_stream: true } });
      }
      const local = a.immediate_response;
      if (local) return { status: local.status.code, local: true, body: JSON.parse(String(local.body)) };
      applyMutation(sent, common(a).header_mutation);
      body = common(a).body_mutation?.body ?? body;
    }
    // The picked endpoint, then its fallbacks: Envoy's first try.
    const destination = sent.get('x-gateway-destination-endpoint')!.split(',')[0];
    const upstream = Object.fromEntries([...sent].filter(([k]) => !k.startsWith(':')));
    const res = await request(`http://${destination}${path}`, { method: method as 'GET', headers: upstream, body });
    const answer = Buffer.from(await res.body.arrayBuffer());
    const pairs: [string, string][] = [[':status', String(res.statusCode)], ...Object.entries(res.headers).map(([k, v]) => [k, String(v)] as [string, string])];
    const served = { metadata_context: { filter_metadata: { 'envoy.lb': toStruct({ 'x-gateway-destination-endpoint-served': destination }) } } };
    for (const call of [...calls].reverse()) {
      await call.send({ response_headers: { headers: headerMap(pairs), end_of_stream: answer.length === 0 }, ...served });
      if (answer.length > 0) await call.send({ response_body: { body: answer, end_of_stream: true } });
    }
    return { status: res.statusCode, local: false, body: JSON.parse(answer.toString()), destination };
  } finally {
    for (const call of calls) envoyEnd(call);
  }
}

for (const backend of DATABASE_BACKENDS) {
  describe(`one usage record per request, tollgate in several parts of it, on a shared ${backend.name} store`, { skip: backend.skip }, () => {
    let db: TestDatabase;
    const dirs: string[] = [];
    const gateways: Gateway[] = [];
    let pdp1: Gateway;
    let pdp2: Gateway;
    let epp1: Gateway;
    let epp2: Gateway;
    let a: IssuedApp;
    let b: IssuedApp;
    let records: AnalyticsRecords;

    /** API keys, and the model on the fleet (set once the fleet is up). */
    let base: Manifest[];
    const start = async (manifests: Manifest[], roles?: ExtprocRole[]): Promise<Gateway> => {
      const dir = await mkdtemp(join(tmpdir(), 'tollgate-one-record-'));
      dirs.push(dir);
      const gw = await startGateway({
        configPaths: [],
        manifests: [...manifests, settings({ analytics: { flushInterval: '10ms' }, scheduler: { staleAfter: '5s' } })],
        ...LOOPBACK,
        db: db.url,
        dbSchema: db.schema,
        analyticsDir: dir,
        ...(roles && { extprocPort: 0, extproc: { roles, requestBodyMode: 'BUFFERED', responseBodyMode: 'BUFFERED' } }),
      });
      gateways.push(gw);
      return gw;
    };
    /** The records of `requestId` once every gateway has stored what it holds. */
    const recordsOf = async (requestId: string) => {
      for (const gw of gateways) await gw.analytics!.flush();
      return records.kysely.selectFrom('analytics_records').selectAll().where('request_id', '=', requestId).execute();
    };

    before(async () => {
      base = [...apiKeyManifests('p'), manifest('InferencePool', 'pool', { endpoints: fleet.urls }), manifest('InferenceModel', MODEL, { modelName: MODEL, poolRef: { name: 'pool' } })];
      db = await backend.create();
      pdp1 = await start(base, ['pdp']);
      // Before the others start, which load them with the rest of the store (SQLite has no change feed between them).
      a = await createApp(pdp1.adminUrl, ['p'], 'owner');
      b = await createApp(pdp1.adminUrl, ['p'], 'other');
      pdp2 = await start(base, ['pdp']);
      epp1 = await start(base, ['epp']);
      epp2 = await start(base, ['epp']);
      for (const gw of [pdp1, pdp2]) for (const app of [a, b]) await untilKeyKnown(gw.url, app.key);
      for (const gw of [epp1, epp2]) await untilEndpoints(gw);
      records = new AnalyticsRecords(pdp1.apim.db);
    });
    after(async () => {
      closeEnvoyClients();
      for (const gw of gateways.splice(0)) await gw.close();
      for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
      await db?.dispose();
    });

    test("Envoy's picker and policy decision point: one record, the policy decision point's, with the app and tokens", async () => {
      const r = await viaEnvoy([epp1, pdp1], 'POST', '/v1/chat/completions', { 'x-api-key': a.key, 'x-request-id': `chat-${backend.name}` }, { messages: [{ role: 'user', content: 'Hello.' }] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const rows = await recordsOf(`chat-${backend.name}`);
      // Before: two, the picker's naming no app, with the same tokens (stats and billing counted the request twice).
      assert.equal(rows.length, 1, JSON.stringify(rows));
      assert.equal(rows[0].app_id, a.appId);
      assert.ok(Number(rows[0].output_tokens) > 0);
    });

    test("a stored response's owner is what the records say on every replica of either role", async () => {
      const made = await viaEnvoy([epp1, pdp1], 'POST', '/v1/responses', { 'x-api-key': a.key, 'x-request-id': `made-${backend.name}` }, { input: 'Mine alone.' });
      assert.equal(made.status, 200, JSON.stringify(made.body));
      const id = made.body.id!;
      assert.equal((await recordsOf(`made-${backend.name}`)).length, 1);
      // Replicas that did not see it made. Before: pdp2 took the picker's record, which names no app, so any app
      // read, continued and deleted it.
      for (const [method, path, fields] of [
        ['GET', `/v1/responses/${id}`, undefined],
        ['POST', '/v1/responses', { input: 'And?', previous_response_id: id }],
        ['DELETE', `/v1/responses/${id}`, undefined],
      ] as const) {
        const r = await viaEnvoy([epp2, pdp2], method, path, { 'x-api-key': b.key }, fields);
        assert.equal(r.local && r.status, 404, `${method} ${path}: ${JSON.stringify(r.body)}`);
        // vLLM's own 404, as an unknown id's: nothing tells another app's id apart.
        assert.deepEqual(r.body, { error: { message: `Response with id '${id}' not found.`, type: 'invalid_request_error', param: 'response_id', code: 404 } });
      }
      // The owner's, routed to the holder by a picker that knows no caller: it leaves the owner to the policy decision point.
      const read = await viaEnvoy([epp2, pdp2], 'GET', `/v1/responses/${id}`, { 'x-api-key': a.key });
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.equal(read.destination, made.destination);
      const next = await viaEnvoy([epp2, pdp2], 'POST', '/v1/responses', { 'x-api-key': a.key }, { input: 'Go on.', previous_response_id: id });
      assert.equal(next.status, 200, JSON.stringify(next.body));
      assert.equal(next.destination, read.destination);
    });

    test('a response id recorded without an app and later with one is owned by that app', async () => {
      // Any record naming no app (a gateway in front of the one that checked the key) made the response reachable by all.
      const at = Date.now();
      const rows = [sampleRecord(1, { time: at, appId: undefined, responseId: `resp_guard_${backend.name}` }), sampleRecord(2, { time: at + 5, appId: 'owner-app', responseId: `resp_guard_${backend.name}` })];
      await records.insert(rows.map((r) => recordRow(r)!));
      assert.equal((await records.findResponse(`resp_guard_${backend.name}`))?.app_id, 'owner-app');
    });

    let edgeStarted: Promise<Gateway> | undefined;
    /**
     * A data plane calling pdp1 through an ExtensionChain. It runs no API management of its own: the policy decision
     * point takes the key out of the request.
     */
    const edge = () =>
      (edgeStarted ??= start([
        ...base.filter((m) => m.kind !== 'APIMExtensionPolicy'),
        manifest('ExtensionChain', 'pdp', { extensions: [{ name: 'pdp', address: `127.0.0.1:${pdp1.extprocPort}`, supportedEvents: ['RequestHeaders', 'RequestBody'] }] }),
      ]).then(async (gw) => (await untilEndpoints(gw), gw)));

    test('a data plane calling a tollgate policy decision point through an ExtensionChain: one record, the caller named', async () => {
      const id = `chain-${backend.name}`;
      const res = await request(`${(await edge()).url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': a.key, 'x-request-id': id },
        body: JSON.stringify({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'Hello.' }] }),
      });
      assert.equal(res.statusCode, 200, await res.body.text());
      const rows = await recordsOf(id);
      // Before: two, the listener's and the edge's, which named no app.
      assert.equal(rows.length, 1, JSON.stringify(rows));
      assert.deepEqual([rows[0].app_id, rows[0].product, rows[0].developer_email], [a.appId, 'p', a.email]);
      assert.ok(Number(rows[0].output_tokens) > 0);
    });

    test('through that data plane, a stored response is the identified app\'s, in memory and in the records', async () => {
      const gw = await edge();
      const send = (key: string, method: string, path: string, fields?: Record<string, unknown>) =>
        call(gw.url, method, path, fields && { model: MODEL, max_output_tokens: 4, ...fields }, { 'x-api-key': key });
      const made = await send(a.key, 'POST', '/v1/responses', { input: 'Through the edge.' });
      assert.equal(made.status, 200, JSON.stringify(made.body));
      const id = made.body.id as string;
      const routing = gw.dataPlane.storedResponses;
      assert.equal(routing.responses.get(id)?.owner, `app:${a.appId}`);
      routing.responses.forget(id);
      await until(() => routing.lookup(id), (l) => l.found !== undefined, 5000, 'the creation recorded');
      routing.responses.forget(id);
      // Before: the record named the app but the edge, knowing no key, took the owner for another app.
      const read = await send(a.key, 'GET', `/v1/responses/${id}`);
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.equal((await send(b.key, 'GET', `/v1/responses/${id}`)).status, 404);
    });
  });
}
