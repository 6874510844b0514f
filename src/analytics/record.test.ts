// Records: built from a finished request's context, ids that sort by time, and rows that the database always accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../gateway/context.js';
import { newContext } from '../gateway/data-plane.js';
import { recordIdTime } from './record-id.js';
import { recordFromContext, recordLine, recordRow, type RequestIdentity } from './record.js';

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
      ttftMs: 40.123, inputTokens: 12, outputTokens: 34, cachedTokens: 8, tokensEstimated: false, cacheHit: true, stream: true, bytesIn: 321, bytesOut: 4321,
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

test("the spool line is what JSON.stringify writes of the record, byte for byte, whatever the fields hold", () => {
  const who: RequestIdentity = { developerId: 'd"1', developerEmail: 'ü@例え.jp', appId: 'a\\1', appName: 'chat\nbot\u0001', productName: 'gold \ud83d\ude00', operationSet: '\ud800 lone', keyId: 'k/1\u007f' };
  const cases: [Partial<RequestContext>, RequestIdentity | undefined, boolean | undefined][] = [
    [{}, who, true],
    [{}, undefined, undefined],
    [{ usage: undefined, model: 'm'.repeat(10_000), targetModel: undefined, endpoint: undefined, status: undefined, errorCode: 'model_not_found', ttftMs: undefined }, undefined, false],
    [{ usage: { inputTokens: 12, outputTokens: 5, cachedTokens: 0, estimated: true }, errorCode: 'client_closed', cacheHit: true }, { appName: 'x' }, undefined],
    [{ operation: 'responses', responseId: 'resp_"</script>', id: '\u2028id\u2029', stream: false, priority: -3 }, who, false],
    [{ operation: undefined, priority: NaN, status: null as unknown as number, ttftMs: 0.0004, bytesIn: 0, bytesOut: -0 }, { developerId: null as unknown as string }, true],
    [{ ttftMs: Infinity, usage: { inputTokens: 1e21, outputTokens: 2 ** 53 + 2, cachedTokens: 1.5e-7 } }, who, undefined],
  ];
  for (const [overrides, identity, cacheHit] of cases) {
    const line = recordLine(finished(overrides), identity, cacheHit, Date.now(), 123.4567891);
    // Escapes, numbers and left-out fields as JSON.stringify has them: written again from what it parses to, unchanged.
    assert.equal(JSON.stringify(JSON.parse(line)) + '\n', line);
  }
  const ctx = finished({ errorCode: 'x', responseId: 'r' });
  assert.deepEqual(Object.keys(JSON.parse(recordLine(ctx, { developerId: 'd', developerEmail: 'e', appId: 'a', appName: 'n', productName: 'p', operationSet: 'o', keyId: 'k' })) as object), [
    'id', 'time', 'requestId', 'developerId', 'developerEmail', 'appId', 'appName', 'product', 'operationSet', 'keyId', 'operation', 'model', 'targetModel',
    'endpoint', 'priority', 'status', 'faultCode', 'latencyMs', 'ttftMs', 'inputTokens', 'outputTokens', 'cachedTokens', 'tokensEstimated', 'responseId',
    'cacheHit', 'stream', 'bytesIn', 'bytesOut',
  ]);
});
