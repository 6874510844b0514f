// Records: built from a finished request's context, ids that sort by time, and rows that the database always accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../gateway/context.js';
import { newContext } from '../gateway/data-plane.js';
import { newRecordId, recordIdTime } from './record-id.js';
import { recordFromContext, recordRow } from './record.js';

function finished(overrides: Partial<RequestContext> = {}): RequestContext {
  const ctx = newContext('POST', '/v1/chat/completions', { 'x-request-id': 'client-chosen-id' }, undefined);
  return Object.assign(ctx, {
    start: performance.now() - 250,
    operation: 'chat.completions' as const,
    model: 'llama',
    targetModel: 'llama-8b',
    priority: 1,
    stream: true,
    endpoint: { url: 'http://10.0.0.5:8000', address: '10.0.0.5:8000' },
    attempts: 1,
    status: 200,
    ttftMs: 40.1234567,
    usage: { inputTokens: 12, outputTokens: 34, cachedTokens: 8 },
    bytesIn: 321,
    bytesOut: 4321,
    ...overrides,
  });
}

test('record ids are UUIDv7, carry their time, and sort by it', () => {
  const ids = [0, 1, 2, 1000, 86_400_000].map((dt) => newRecordId(1_700_000_000_000 + dt));
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(recordIdTime(ids[3]), 1_700_000_001_000);
  assert.notEqual(newRecordId(5), newRecordId(5));
});

test('a record from a finished request, with the identity the policy engine found', () => {
  const before = Date.now();
  const r = recordFromContext(finished(), { developerId: 'd1', developerEmail: 'a@x', appId: 'a1', appName: 'chatbot', productName: 'gold', operationSet: 'chat', keyId: 'k1' }, true);
  assert.notEqual(r.id, 'client-chosen-id');
  assert.ok(recordIdTime(r.id) >= before);
  assert.equal(r.requestId, 'client-chosen-id');
  assert.ok(Math.abs(r.time - (before - 250)) < 50, 'time is the arrival');
  assert.ok(r.latencyMs >= 250 && r.latencyMs < 300);
  assert.equal(r.ttftMs, 40.123);
  assert.deepEqual(
    { ...r, id: undefined, time: undefined, latencyMs: undefined },
    {
      id: undefined, time: undefined, latencyMs: undefined, requestId: 'client-chosen-id',
      developerId: 'd1', developerEmail: 'a@x', appId: 'a1', appName: 'chatbot', product: 'gold', operationSet: 'chat', keyId: 'k1',
      operation: 'chat.completions', model: 'llama', targetModel: 'llama-8b', endpoint: '10.0.0.5:8000', priority: 1, status: 200,
      faultCode: undefined, ttftMs: 40.123, inputTokens: 12, outputTokens: 34, cachedTokens: 8, tokensEstimated: false, responseId: undefined, cacheHit: true, stream: true, bytesIn: 321, bytesOut: 4321,
    },
  );
});

test('without API management or usage, those fields are absent (stored as NULL), and huge model names are clipped', () => {
  const r = recordFromContext(finished({ usage: undefined, model: 'm'.repeat(10_000), status: 404, errorCode: 'model_not_found' }));
  assert.equal(r.appName, undefined);
  assert.equal(r.inputTokens, undefined);
  assert.equal(r.cacheHit, false);
  assert.equal(r.model!.length, 256);
  const row = recordRow(JSON.parse(JSON.stringify(r)))!;
  assert.equal(row.input_tokens, null);
  assert.equal(row.app_name, null);
  assert.equal(row.fault_code, 'model_not_found');
});

test("tollgate's estimate of a cut stream's usage is marked, its cached tokens unknown rather than 0", () => {
  const r = recordFromContext(finished({ usage: { inputTokens: 12, outputTokens: 5, cachedTokens: 0, estimated: true }, errorCode: 'client_closed' }));
  assert.deepEqual([r.inputTokens, r.outputTokens, r.cachedTokens, r.tokensEstimated], [12, 5, undefined, true]);
  const row = recordRow(JSON.parse(JSON.stringify(r)))!;
  assert.deepEqual([row.input_tokens, row.output_tokens, row.cached_tokens, row.tokens_estimated], [12, 5, null, 1]);
  // Lines spooled before the column existed say nothing: reported.
  assert.equal(recordRow({ id: 'old', time: 1 })!.tokens_estimated, 0);
});

test("a stored Responses answer's id is recorded; lines spooled before the column existed have none", () => {
  const r = recordFromContext(finished({ operation: 'responses', responseId: 'resp_abc' }));
  assert.equal(recordRow(JSON.parse(JSON.stringify(r)))!.response_id, 'resp_abc');
  assert.equal(recordRow({ id: 'old', time: 1 })!.response_id, null);
});

test('rows from spooled lines are coerced so the database never refuses them', () => {
  const cases: [Record<string, unknown>, Partial<ReturnType<typeof recordRow> & object> | undefined][] = [
    [{ time: 1 }, undefined],
    [{ id: 'x' }, undefined],
    [{ id: 'x', time: 'soon' }, undefined],
    [{ id: 'a', time: 1.7, model: 'l\u0000lama', status: '200', inputTokens: 1e300, outputTokens: 2.9, priority: 1e12 }, { id: 'a', at_ms: 1, model: 'llama', status: null, input_tokens: Number.MAX_SAFE_INTEGER, output_tokens: 2, priority: 2147483647 }],
    [{ id: 'b', time: 5, cacheHit: 'yes', stream: true, latencyMs: Infinity, requestId: 7 }, { cache_hit: 0, stream: 1, latency_ms: 0, request_id: '' }],
  ];
  for (const [input, expected] of cases) {
    const row = recordRow(input);
    if (expected === undefined) assert.equal(row, undefined, JSON.stringify(input));
    else for (const [k, v] of Object.entries(expected)) assert.equal(row![k as keyof typeof row], v, `${JSON.stringify(input)} ${k}`);
  }
});
