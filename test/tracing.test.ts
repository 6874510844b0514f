// Request tracing against an in-test OTLP/HTTP JSON receiver: the span tree, GenAI attributes, traceparent in and out, sampling, and the no-op when off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { capturingLogger } from '../src/analytics/test-records.js';
import { freePort } from '../src/lib/ports.js';
import type { RequestContext } from '../src/gateway/context.js';
import { newContext } from '../src/gateway/data-plane.js';
import { createRequestTracer, NOOP_SPAN, NOOP_TRACER, type RequestTracer } from '../src/telemetry/tracing.js';
import { tracingSettingsSpec } from '../src/telemetry/tracing-settings.js';
import { startOtlpReceiver, type OtlpReceiver, type OtlpSpan } from './helpers/otlp-receiver.js';

const KIND = { internal: 1, server: 2, client: 3 };
const ERROR = 2;
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

function attrs(span: OtlpSpan): Record<string, string | number | boolean | undefined> {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const { key, value } of span.attributes) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ?? value.boolValue;
  }
  return out;
}

function requestContext(overrides: Partial<RequestContext> = {}, headers: Record<string, string> = {}): RequestContext {
  const ctx = newContext('POST', '/v1/chat/completions', { host: 'gateway.example:8080', 'x-request-id': 'req-1', ...headers }, '127.0.0.1');
  return Object.assign(ctx, { operation: 'chat.completions' as const, model: 'llama', ...overrides });
}

describe('tracing', () => {
  let receiver: OtlpReceiver;
  let endpoint: string;
  let exports: OtlpReceiver['exports'];
  const spans = () => receiver.spans();

  before(async () => {
    receiver = await startOtlpReceiver();
    endpoint = receiver.endpoint;
    exports = receiver.exports;
  });
  after(() => receiver.close());

  function tracer(settings: Record<string, unknown> = {}): RequestTracer {
    exports.length = 0;
    return createRequestTracer(tracingSettingsSpec.parse({ endpoint, exportInterval: '10ms', serviceName: 'tollgate-test', ...settings }));
  }

  test('a request: server span continuing the caller, policy and pick children, a GenAI client span, traceparent to the model server', async () => {
    const t = tracer();
    const ctx = requestContext({}, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, tracestate: 'vendor=abc' });
    const server = t.startRequestSpan(ctx);
    t.endChild(t.startChild(server, 'policies'));
    t.endChild(t.startChild(server, 'pick'));
    Object.assign(ctx, { targetModel: 'llama-8b', endpoint: { url: 'http://10.0.0.5:8000', address: '10.0.0.5:8000' }, attempts: 1 });
    const upstream = t.startUpstreamSpan(server, ctx);
    const headers: Record<string, string | string[]> = { traceparent: 'from-the-client' };
    t.injectTraceparent(upstream, headers);
    Object.assign(ctx, { status: 200, usage: { inputTokens: 12, outputTokens: 34, cachedTokens: 0 } });
    t.endUpstreamSpan(upstream, ctx);
    t.endRequestSpan(server, ctx);
    await t.forceFlush();
    await t.shutdown();

    assert.ok(exports.every((e) => e.path === '/v1/traces' && e.contentType === 'application/json' && e.serviceName === 'tollgate-test'));
    const byName = new Map(spans().map((s) => [s.name, s]));
    assert.deepEqual([...byName.keys()].sort(), ['POST /v1/chat/completions', 'chat llama-8b', 'pick', 'policies']);
    const root = byName.get('POST /v1/chat/completions')!;
    const up = byName.get('chat llama-8b')!;
    for (const s of spans()) assert.equal(s.traceId, CALLER_TRACE);
    assert.equal(root.parentSpanId, CALLER_SPAN);
    assert.equal(root.kind, KIND.server);
    for (const name of ['policies', 'pick']) {
      assert.equal(byName.get(name)!.parentSpanId, root.spanId);
      assert.equal(byName.get(name)!.kind, KIND.internal);
    }
    assert.equal(up.parentSpanId, root.spanId);
    assert.equal(up.kind, KIND.client);
    assert.equal(headers.traceparent, `00-${CALLER_TRACE}-${up.spanId}-01`);
    assert.equal(headers.tracestate, 'vendor=abc');

    assert.deepEqual(attrs(root), {
      'http.request.method': 'POST',
      'url.path': '/v1/chat/completions',
      'http.route': '/v1/chat/completions',
      'server.address': 'gateway.example',
      'server.port': 8080,
      'http.response.status_code': 200,
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'llama',
      'gen_ai.response.model': 'llama-8b',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 34,
      'tollgate.request_id': 'req-1',
      'tollgate.priority': 0,
    });
    assert.deepEqual(attrs(up), {
      'http.request.method': 'POST',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'llama-8b',
      'gen_ai.response.model': 'llama-8b',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 34,
      'server.address': '10.0.0.5',
      'server.port': 8000,
      'http.response.status_code': 200,
      'tollgate.upstream.attempts': 1,
    });
    assert.notEqual(root.status?.code, ERROR);
  });

  test('failures: a refusing policy and a 5xx mark their spans; a 4xx does not fail the server span', async () => {
    const t = tracer();
    const refused = requestContext({ operation: 'completions' });
    const a = t.startRequestSpan(refused);
    t.endChild(t.startChild(a, 'policies'), Object.assign(new Error('quota exceeded'), { code: 'policies.ratelimit.QuotaViolation' }));
    Object.assign(refused, { status: 429, errorCode: 'policies.ratelimit.QuotaViolation' });
    t.endRequestSpan(a, refused);

    const broken = requestContext({ operation: 'embeddings', path: '/v1/embeddings', targetModel: 'e5' });
    const b = t.startRequestSpan(broken);
    const up = t.startUpstreamSpan(b, broken);
    Object.assign(broken, { status: 502, errorCode: 'upstream_error' });
    t.endUpstreamSpan(up, broken, Object.assign(new Error('socket hang up'), { code: 'UND_ERR_SOCKET' }));
    t.endRequestSpan(b, broken);
    await t.forceFlush();
    await t.shutdown();

    const byName = new Map(spans().map((s) => [s.name, s]));
    assert.equal(byName.get('policies')!.status?.code, ERROR);
    assert.equal(attrs(byName.get('policies')!)['error.type'], 'policies.ratelimit.QuotaViolation');
    assert.equal(attrs(byName.get('POST /v1/chat/completions')!)['gen_ai.operation.name'], 'text_completion');
    assert.notEqual(byName.get('POST /v1/chat/completions')!.status?.code, ERROR);
    assert.equal(byName.get('embeddings e5')!.status?.code, ERROR);
    assert.equal(attrs(byName.get('embeddings e5')!)['error.type'], 'UND_ERR_SOCKET');
    assert.equal(byName.get('POST /v1/embeddings')!.status?.code, ERROR);
    assert.equal(attrs(byName.get('POST /v1/embeddings')!)['error.type'], 'upstream_error');
  });

  test('an answer cut mid-stream by the model server fails both spans with its code; a client hang-up fails neither', async () => {
    const t = tracer();
    const spanPair = (targetModel: string, errorCode: string) => {
      const ctx = requestContext({ targetModel });
      const server = t.startRequestSpan(ctx);
      const up = t.startUpstreamSpan(server, ctx);
      // The head went out as 200; the stream then ended early (no error reaches the span: the status was sent).
      Object.assign(ctx, { status: 200, errorCode });
      t.endUpstreamSpan(up, ctx);
      t.endRequestSpan(server, ctx);
    };
    spanPair('died', 'upstream_error');
    spanPair('stalled', 'upstream_timeout');
    spanPair('stopped', 'client_closed');
    await t.forceFlush();
    await t.shutdown();

    const all = spans();
    const server = (model: string) => all.find((s) => s.kind === KIND.server && all.some((c) => c.name === `chat ${model}` && c.parentSpanId === s.spanId))!;
    for (const [model, code] of [['died', 'upstream_error'], ['stalled', 'upstream_timeout']]) {
      const client = all.find((s) => s.name === `chat ${model}`)!;
      assert.equal(client.status?.code, ERROR, model);
      assert.equal(attrs(client)['error.type'], code);
      assert.equal(server(model).status?.code, ERROR, model);
      assert.equal(attrs(server(model))['error.type'], code);
    }
    assert.notEqual(all.find((s) => s.name === 'chat stopped')!.status?.code, ERROR);
    assert.notEqual(server('stopped').status?.code, ERROR);
  });

  test('sampling: ratio 0 records nothing but still propagates; a sampled caller is followed; a bad traceparent starts a new trace', async () => {
    const t = tracer({ sampleRatio: 0 });
    const quiet = requestContext();
    const span = t.startRequestSpan(quiet);
    assert.equal(span.isRecording(), false);
    assert.equal(t.startChild(span, 'policies'), span, 'no child spans under an unsampled root');
    const headers: Record<string, string | string[]> = {};
    t.injectTraceparent(t.startUpstreamSpan(span, quiet), headers);
    assert.match(String(headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    t.endRequestSpan(span, quiet);

    const followed = requestContext({}, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` });
    t.endRequestSpan(t.startRequestSpan(followed), Object.assign(followed, { status: 200 }));
    const malformed = requestContext({}, { traceparent: `00-${'0'.repeat(32)}-${CALLER_SPAN}-01` });
    const fresh = t.startRequestSpan(malformed);
    assert.notEqual(fresh.spanContext().traceId, '0'.repeat(32));
    await t.forceFlush();
    await t.shutdown();
    assert.deepEqual(spans().map((s) => s.traceId), [CALLER_TRACE]);
  });

  test('sampling: a ratio records about that share of new traces, each exported whole, and flags the others unsampled upstream', async () => {
    const t = tracer({ sampleRatio: 0.5 });
    const flags = { recorded: 0, sampledUpstream: 0 };
    for (let i = 0; i < 400; i++) {
      const ctx = requestContext();
      const span = t.startRequestSpan(ctx);
      t.endChild(t.startChild(span, 'pick'));
      const headers: Record<string, string | string[]> = {};
      t.injectTraceparent(t.startUpstreamSpan(span, ctx), headers);
      if (span.isRecording()) flags.recorded++;
      if (String(headers.traceparent).endsWith('-01')) flags.sampledUpstream++;
      t.endRequestSpan(span, Object.assign(ctx, { status: 200 }));
    }
    await t.forceFlush();
    await t.shutdown();
    // Binomial(400, 0.5): 200 ± 10; the bounds are 6 standard deviations out (and far from 0.5², which a second draw would give).
    assert.ok(flags.recorded > 140 && flags.recorded < 260, `${flags.recorded} of 400 recorded`);
    assert.equal(flags.sampledUpstream, flags.recorded);
    const exported = spans();
    assert.equal(exported.filter((s) => s.kind === KIND.server).length, flags.recorded);
    assert.equal(exported.filter((s) => s.name === 'pick').length, flags.recorded);
  });

  test('a collector gone at shutdown costs the last spans (logged), not the stop', async () => {
    const port = await freePort();
    const { logger, lines } = capturingLogger();
    const t = createRequestTracer(tracingSettingsSpec.parse({ endpoint: `http://127.0.0.1:${port}`, exportInterval: '1h' }), logger);
    const ctx = requestContext({});
    t.endRequestSpan(t.startRequestSpan(ctx), Object.assign(ctx, { status: 200 }));
    await t.shutdown();
    assert.ok(lines.some((l) => l.msg === 'the last spans could not be exported'));
  });

  test('off without an endpoint: constant no-op spans, headers untouched, no allocation', () => {
    const t = createRequestTracer(tracingSettingsSpec.parse({}));
    assert.equal(t, NOOP_TRACER);
    assert.equal(t.enabled, false);
    const ctx = requestContext({}, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` });
    const headers: Record<string, string | string[]> = { traceparent: 'from-the-client' };
    const rounds = 200_000;
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < rounds; i++) {
      const s = t.startRequestSpan(ctx);
      t.endChild(t.startChild(s, 'policies'));
      const up = t.startUpstreamSpan(s, ctx);
      t.injectTraceparent(up, headers);
      t.endUpstreamSpan(up, ctx);
      t.endRequestSpan(s, ctx);
      if (s !== NOOP_SPAN || up !== NOOP_SPAN) assert.fail('a new span when off');
    }
    assert.deepEqual(headers, { traceparent: 'from-the-client' });
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 4 * 1024 * 1024, 'no per-request garbage');
  });
});
