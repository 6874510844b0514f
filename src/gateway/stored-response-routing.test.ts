import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConfig } from '../config/runtime-config.js';
import { manifestOf } from '../config/manifest.js';
import { silentLogger } from '../lib/logger.js';
import type { RequestContext } from './context.js';
import { newContext } from './data-plane.js';
import type { GatewayError } from './errors.js';
import { StoredResponseRouting } from './stored-response-routing.js';
import { responseIdSink, type FindRecordedResponse } from './stored-responses.js';

const m = (kind: string, name: string, spec: unknown) => manifestOf(kind, name, spec, 'test');

function config(poolName = 'pool') {
  return compileConfig([
    m('InferencePool', poolName, { endpoints: ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'] }),
    m('InferenceModel', 'm', { modelName: 'm', poolRef: { name: poolName } }),
    m('HTTPRoute', 'ext', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/ext/' } }], backendRefs: [{ url: 'https://api.example.com' }] }] }),
  ]);
}

function ctxOf(app?: string, fields: Partial<RequestContext> = {}): RequestContext {
  const ctx = Object.assign(newContext('POST', '/v1/responses', {}, '127.0.0.1'), fields);
  if (app !== undefined) ctx.apim = { key: { appId: app } } as RequestContext['apim'];
  return ctx;
}

const code = (err: unknown) => (err as GatewayError).code;

describe('StoredResponseRouting', () => {
  test('looks an id up in memory, then in the records (kept after); a failing lookup is told apart from none', async () => {
    let calls = 0;
    const records = new Map([['resp_r', { endpoint: '10.0.0.2:8000', app_id: 'A', model: 'm' }]]);
    const find: FindRecordedResponse = async (id) => {
      calls++;
      if (id === 'resp_err') throw new Error('database down');
      return records.get(id);
    };
    const routing = new StoredResponseRouting(() => config(), find, silentLogger);
    assert.deepEqual(await routing.lookup('resp_r'), { found: { address: '10.0.0.2:8000', model: 'm', owner: 'app:A' } });
    await routing.lookup('resp_r');
    assert.equal(calls, 1, 'kept in memory after the first lookup');
    assert.deepEqual(await routing.lookup('resp_none'), { found: undefined, failed: false });
    assert.deepEqual(await routing.lookup('resp_err'), { found: undefined, failed: true });
  });

  test("an id found nowhere is looked for again until another replica's record of it would have arrived", async () => {
    const current = config();
    current.settings.analytics.flushInterval = 300;
    let calls = 0;
    let recordedAt = Infinity;
    const routing = new StoredResponseRouting(
      () => current,
      async () => (calls++, performance.now() >= recordedAt ? { endpoint: '10.0.0.2:8000', app_id: 'A', model: 'm', input_tokens: 40, output_tokens: 2 } : undefined),
      silentLogger,
    );
    // Made on another replica a moment ago: its record reaches the database while the lookup waits for it.
    recordedAt = performance.now() + 250;
    const fresh = await routing.lookup('resp_fresh', 'app:A');
    assert.deepEqual(fresh, { found: { address: '10.0.0.2:8000', model: 'm', owner: 'app:A', tokens: 42 } });
    assert.ok(calls >= 2, 'asked again');
    // Before: the first miss was final, and another app's follow-up was picked freely onto the holder.
    recordedAt = Infinity;
    calls = 0;
    assert.deepEqual(await routing.lookup('resp_none', 'app:A'), { found: undefined, failed: false });
    assert.ok(calls >= 2 && calls <= 6, `asked ${calls} times while its record might arrive, not more`);
  });

  test('a response made here is known from the moment its id is read, its tokens once its answer ends', () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const ctx = ctxOf('A', { operation: 'responses', body: { model: 'm' }, model: 'm', endpoint: { url: 'http://10.0.0.1:8000', address: '10.0.0.1:8000' } });
    ctx.onStoredResponse = (c) => routing.track(c);
    responseIdSink(ctx, 200)!('resp_new');
    assert.deepEqual(routing.responses.get('resp_new'), { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' });
    ctx.usage = { inputTokens: 30, outputTokens: 5, cachedTokens: 0 };
    routing.track(ctx);
    assert.equal(routing.responses.get('resp_new')?.tokens, 35);
  });

  test("recall: a creation an earlier process spooled is known before any request; what is known already keeps its owner", async () => {
    const routing = new StoredResponseRouting(() => config(), async () => undefined, silentLogger);
    routing.recall('resp_spooled', { endpoint: '10.0.0.2:8000', app_id: 'A', model: 'm', input_tokens: 7, output_tokens: 1 });
    routing.recall('resp_spooled', { endpoint: '10.0.0.1:8000', app_id: 'B', model: 'm' });
    routing.recall('resp_nobody', { endpoint: null, app_id: null, model: 'm' });
    assert.deepEqual(routing.responses.get('resp_spooled'), { address: '10.0.0.2:8000', model: 'm', owner: 'app:A', tokens: 8 });
    assert.equal(routing.responses.get('resp_nobody'), undefined);
    assert.throws(() => routing.reachable({ found: routing.responses.get('resp_spooled')! }, 'resp_spooled', ctxOf('B')), (e) => code(e) === 'response_not_found');
  });

  test('storedResponses: 0 turns routing off: no records lookup, nothing known, no 503, no follow-up held', async () => {
    let current = config();
    let sent = 0;
    const routing = new StoredResponseRouting(() => current, async () => (sent++, { endpoint: '10.0.0.2:8000', app_id: 'A', model: 'm' }), silentLogger);
    routing.responses.remember('resp_held', { address: '10.0.0.2:8000', model: 'm', owner: 'app:A' }, 10);
    current = { ...current, settings: { ...current.settings, scheduler: { ...current.settings.scheduler, storedResponses: 0 } } };
    for (const id of ['resp_held', 'resp_recorded']) assert.deepEqual(await routing.lookup(id), { found: undefined, failed: false }, id);
    assert.equal(sent, 0);
    const ctx = ctxOf('B', { modelConfig: current.models.get('m')?.[0] });
    await routing.continueAt(ctx, 'resp_held');
    assert.equal(ctx.subset, undefined, 'picked as any request is');
  });

  test("reachable: another app's is 404; with API keys a failed lookup is 503 and one found nowhere 404; without, both unknown", () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const owned = { found: { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' } };
    assert.equal(routing.reachable(owned, 'r', ctxOf('A')), owned.found);
    assert.throws(() => routing.reachable(owned, 'r', ctxOf('B')), (e) => code(e) === 'response_not_found');
    assert.throws(() => routing.reachable({ found: undefined, failed: true }, 'r', ctxOf('B')), (e) => code(e) === 'response_lookup_failed');
    // May be another app's whose record has not reached here yet: never sent on for whoever asks.
    assert.throws(() => routing.reachable({ found: undefined, failed: false }, 'r', ctxOf('B')), (e) => code(e) === 'response_not_found');
    assert.equal(routing.reachable({ found: undefined, failed: true }, 'r', ctxOf()), undefined);
    assert.equal(routing.reachable({ found: undefined, failed: false }, 'r', ctxOf()), undefined);
  });

  test("the 404 is vLLM's own to the byte, whatever the fault format: an app cannot tell another app's id from an unknown one", () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    let err: unknown;
    try {
      routing.reachable({ found: { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' } }, 'resp_abc', ctxOf('B'));
    } catch (e) {
      err = e;
    }
    const vllm = '{"error":{"message":"Response with id \'resp_abc\' not found.","type":"invalid_request_error","param":"response_id","code":404}}';
    for (const format of ['openai', 'apigee'] as const) {
      const r = (err as GatewayError).toResponse(format);
      assert.equal(r.status, 404);
      assert.equal(r.body, vllm, format);
      assert.equal(r.headers['content-type'], 'application/json');
    }
    assert.equal(code(err), 'response_not_found', 'recorded under its own code');
  });

  test("reachable: an ext_proc endpoint picker alone, which knows no caller, routes to an owned response (its chain's policy decision point checks the owner)", () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const owned = { found: { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' } };
    // Before: every follow-up and read of an owned response was the picker's own 404, its owner's too.
    assert.equal(routing.reachable(owned, 'r', ctxOf(undefined, { stages: 'picker' })), owned.found);
    assert.throws(() => routing.reachable(owned, 'r', ctxOf(undefined, { stages: 'policies' })), (e) => code(e) === 'response_not_found');
  });

  test('reachable: the app a tollgate extension identified (this gateway checks no key) reaches its own, and no other', () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const owned = { found: { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' } };
    assert.equal(routing.reachable(owned, 'r', ctxOf(undefined, { extensionIdentity: { appId: 'A' } })), owned.found);
    assert.throws(() => routing.reachable(owned, 'r', ctxOf(undefined, { extensionIdentity: { appId: 'B' } })), (e) => code(e) === 'response_not_found');
  });

  test('the holder is found by address, in whichever pool (renamed on reload) or route URL lists it', () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const held = { address: '10.0.0.2:8000', model: 'm' };
    assert.equal(routing.holder(held, config('pool'))?.url, 'http://10.0.0.2:8000');
    assert.equal(routing.holder(held, config('renamed'))?.url, 'http://10.0.0.2:8000');
    assert.deepEqual(routing.holder({ address: 'api.example.com:443', model: 'm' }, config()), { url: 'https://api.example.com', address: 'api.example.com:443' });
    assert.equal(routing.holder({ address: '10.9.9.9:1', model: 'm' }, config()), undefined);
  });

  test("track: an id another app already holds keeps its first owner; a deleted one is forgotten", () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const endpoint = { url: 'http://10.0.0.1:8000', address: '10.0.0.1:8000' };
    routing.track(ctxOf('A', { responseId: 'resp_1', endpoint, model: 'm' }));
    routing.track(ctxOf('B', { responseId: 'resp_1', endpoint: { url: 'http://10.0.0.2:8000', address: '10.0.0.2:8000' }, model: 'm' }));
    assert.deepEqual(routing.responses.get('resp_1'), { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' });
    routing.track(ctxOf('A', { storedResponse: { id: 'resp_1', action: 'delete' }, upstreamStatus: 200 }));
    assert.equal(routing.responses.get('resp_1'), undefined);
  });

  test('an ext_proc policy decision point alone, its endpoint unknown: the owner is kept (in memory and from the records), never a route', async () => {
    const records = new Map([
      ['resp_owned', { endpoint: null, app_id: 'A', model: 'm' }],
      ['resp_nobody', { endpoint: null, app_id: null, model: 'm' }],
    ]);
    const routing = new StoredResponseRouting(() => config(), async (id) => records.get(id), silentLogger);
    routing.track(ctxOf('A', { responseId: 'resp_mine', model: 'm' }));
    routing.track(ctxOf(undefined, { responseId: 'resp_anyone', model: 'm' }));
    const mine = routing.responses.get('resp_mine')!;
    assert.equal(mine.owner, 'app:A');
    assert.equal(routing.responses.get('resp_anyone'), undefined, 'nothing to route or protect');
    assert.equal((await routing.lookup('resp_owned')).found?.owner, 'app:A');
    assert.deepEqual(await routing.lookup('resp_nobody'), { found: undefined, failed: false });
    assert.equal(routing.holder(mine, config()), undefined);
    const ctx = ctxOf('A', { modelConfig: config().models.get('m')?.[0] });
    await routing.continueAt(ctx, 'resp_mine');
    assert.equal(ctx.subset, undefined, 'picked as any request is');
    assert.throws(() => routing.reachable({ found: mine }, 'resp_mine', ctxOf('B')), (e) => code(e) === 'response_not_found');
  });

  test("continueAt: a pool's follow-up is held to the holder; a route URL follow-up goes to the holder's URL, never to a pool endpoint", async () => {
    const current = config();
    const routing = new StoredResponseRouting(() => current, undefined, silentLogger);
    routing.responses.remember('resp_p', { address: '10.0.0.2:8000', model: 'm' }, 10);
    const ctx = ctxOf(undefined, { modelConfig: current.models.get('m')?.[0] });
    await routing.continueAt(ctx, 'resp_p');
    assert.deepEqual([...ctx.subset!], ['10.0.0.2:8000']);
    const hinted = ctxOf(undefined, { modelConfig: current.models.get('m')?.[0], subset: new Set(['10.0.0.1:8000']) });
    await routing.continueAt(hinted, 'resp_p');
    assert.equal(hinted.subset!.size, 0, 'outside the subset hint nothing can serve it');
    routing.responses.remember('resp_u', { address: 'api.example.com:443', model: 'm' }, 10);
    const routed = ctxOf(undefined, { backend: { kind: 'url', url: 'https://other.example.com', address: 'other.example.com:443' } });
    await routing.continueAt(routed, 'resp_u');
    assert.deepEqual(routed.backend, { kind: 'url', url: 'https://api.example.com', address: 'api.example.com:443' });
    assert.equal(routed.historyTokens, undefined, 'its tokens not known');
    const viaRoute = ctxOf(undefined, { backend: { kind: 'url', url: 'https://other.example.com', address: 'other.example.com:443' } });
    await routing.continueAt(viaRoute, 'resp_p');
    assert.equal(viaRoute.backend?.kind === 'url' && viaRoute.backend.address, 'other.example.com:443');
  });

  test('continueAt: what the continued response brings in is the follow-up\'s history; an id of another form is no app\'s and not looked up', async () => {
    const current = config();
    let sent = 0;
    const routing = new StoredResponseRouting(() => current, async () => (sent++, undefined), silentLogger);
    routing.responses.remember('resp_p', { address: '10.0.0.2:8000', model: 'm', owner: 'app:A', tokens: 3011 }, 10);
    const ctx = ctxOf('A', { modelConfig: current.models.get('m')?.[0], operation: 'responses' });
    await routing.continueAt(ctx, 'resp_p');
    assert.equal(ctx.historyTokens, 3011);
    const odd = ctxOf('B', { modelConfig: current.models.get('m')?.[0] });
    await routing.continueAt(odd, 'not/an id');
    assert.equal(sent, 0);
    assert.equal(odd.subset, undefined, 'picked as any request is: its server says');
  });
});
