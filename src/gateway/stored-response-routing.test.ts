import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConfig } from '../config/runtime-config.js';
import { manifestOf } from '../config/manifest.js';
import { silentLogger } from '../lib/logger.js';
import type { RequestContext } from './context.js';
import { newContext } from './data-plane.js';
import type { GatewayError } from './errors.js';
import { StoredResponseRouting } from './stored-response-routing.js';
import type { FindRecordedResponse } from './stored-responses.js';

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

  test('records queries at once are bounded until they end, and one that does not answer in time counts as failed', async () => {
    let sent = 0;
    let end!: (r: undefined) => void;
    const stalled = new Promise<undefined>((resolve) => (end = resolve));
    const routing = new StoredResponseRouting(() => config(), () => (sent++, stalled), silentLogger);
    const pending = Array.from({ length: 8 }, (_, i) => routing.lookup(`resp_${i}`));
    assert.deepEqual(await routing.lookup('resp_9'), { found: undefined, failed: true }, 'a ninth at once is not sent');
    assert.equal(sent, 8);
    for (const r of await Promise.all(pending)) assert.deepEqual(r, { found: undefined, failed: true });
    // Before: the timed-out requests gave their slots back while their queries ran on, so a flood piled up more.
    assert.deepEqual(await routing.lookup('resp_10'), { found: undefined, failed: true }, 'the abandoned queries still run');
    assert.equal(sent, 8);
    end(undefined);
    await stalled;
    assert.deepEqual(await routing.lookup('resp_11'), { found: undefined, failed: false }, 'sent once they ended');
    assert.equal(sent, 9);
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

  test("reachable: another app's is 404; a failed lookup is 503 with API keys, unknown without", () => {
    const routing = new StoredResponseRouting(() => config(), undefined, silentLogger);
    const owned = { found: { address: '10.0.0.1:8000', model: 'm', owner: 'app:A' } };
    assert.equal(routing.reachable(owned, 'r', ctxOf('A')), owned.found);
    assert.throws(() => routing.reachable(owned, 'r', ctxOf('B')), (e) => code(e) === 'response_not_found');
    assert.throws(() => routing.reachable({ found: undefined, failed: true }, 'r', ctxOf('B')), (e) => code(e) === 'response_lookup_failed');
    assert.equal(routing.reachable({ found: undefined, failed: true }, 'r', ctxOf()), undefined);
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
    const viaRoute = ctxOf(undefined, { backend: { kind: 'url', url: 'https://other.example.com', address: 'other.example.com:443' } });
    await routing.continueAt(viaRoute, 'resp_p');
    assert.equal(viaRoute.backend?.kind === 'url' && viaRoute.backend.address, 'other.example.com:443');
  });
});
