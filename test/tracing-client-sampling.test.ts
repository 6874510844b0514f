// tracing.clientSampling: the share of requests whose sampled traceparent is followed. The rest are sampled at
// sampleRatio, drawn by tollgate (not from the trace id the caller chose), and keep the caller's trace id either way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newContext } from '../src/gateway/data-plane.js';
import { startGateway } from '../src/gateway/gateway.js';
import { createRequestTracer, type RequestTracer } from '../src/telemetry/tracing.js';
import { tracingSettingsSpec } from '../src/telemetry/tracing-settings.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const sampledCaller = (traceId = randomBytes(16).toString('hex')) => `00-${traceId}-${randomBytes(8).toString('hex')}-01`;

describe('tracing.clientSampling', () => {
  let receiver: OtlpReceiver;
  before(async () => {
    receiver = await startOtlpReceiver();
  });
  after(() => receiver.close());

  function tracer(settings: Record<string, unknown>): RequestTracer {
    return createRequestTracer(tracingSettingsSpec.parse({ endpoint: receiver.endpoint, exportInterval: '1h', ...settings }));
  }

  /** How many of `n` requests with these traceparents the tracer records. */
  function recorded(t: RequestTracer, n: number, traceparent: () => string): number {
    let count = 0;
    for (let i = 0; i < n; i++) {
      const span = t.startRequestSpan(newContext('POST', '/v1/chat/completions', { traceparent: traceparent() }, undefined));
      if (span.isRecording()) count++;
      span.end();
    }
    return count;
  }

  test('a share from 0 to 1, 1 (follow every caller) unless set', () => {
    assert.equal(tracingSettingsSpec.parse({}).clientSampling, 1);
    assert.equal(tracingSettingsSpec.parse({ clientSampling: 0 }).clientSampling, 0);
    for (const bad of [-0.1, 1.5, '0.5']) assert.equal(tracingSettingsSpec.safeParse({ clientSampling: bad }).success, false, String(bad));
  });

  test('0: a sampled caller does not decide; at sampleRatio 0 nothing is recorded, the trace id is still the caller\'s', async () => {
    const t = tracer({ sampleRatio: 0, clientSampling: 0 });
    assert.equal(recorded(t, 100, sampledCaller), 0);
    const traceId = randomBytes(16).toString('hex');
    const span = t.startRequestSpan(newContext('POST', '/v1/chat/completions', { traceparent: sampledCaller(traceId), tracestate: 'vendor=abc' }, undefined));
    const headers: Record<string, string | string[]> = {};
    t.injectTraceparent(t.startUpstreamSpan(span, newContext('POST', '/v1/chat/completions', {}, undefined)), headers);
    assert.match(String(headers.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`), 'the model server is told it is not sampled');
    assert.equal(headers.tracestate, 'vendor=abc');
    await t.shutdown();
  });

  test('0: the others are drawn at sampleRatio, not judged by a trace id the caller could pick to pass', async () => {
    // A trace id TraceIdRatioBasedSampler passes at any ratio above 0: judged by it, all 200 would be recorded.
    const passing = () => sampledCaller('0'.repeat(31) + '1');
    const t = tracer({ sampleRatio: 0.05, clientSampling: 0 });
    assert.ok(recorded(t, 200, passing) < 60);
    await t.shutdown();
    const all = tracer({ sampleRatio: 1, clientSampling: 0 });
    assert.equal(recorded(all, 50, sampledCaller), 50, 'sampleRatio 1 still records every request');
    await all.shutdown();
  });

  test('a share between: about that many sampled callers are followed; an unsampled caller is still not recorded', async () => {
    const t = tracer({ sampleRatio: 0, clientSampling: 0.5 });
    const count = recorded(t, 400, sampledCaller);
    assert.ok(count > 120 && count < 280, `${count} of 400 followed at 0.5`);
    assert.equal(recorded(t, 50, () => sampledCaller().replace(/-01$/, '-00')), 0);
    await t.shutdown();
    const every = tracer({ sampleRatio: 0 });
    assert.equal(recorded(every, 50, sampledCaller), 50, 'the default follows every sampled caller');
    await every.shutdown();
  });

  test('a reload changes it for the requests that follow', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-client-sampling-'));
    writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml('http://127.0.0.1:9'));
    const write = (clientSampling: number) =>
      writeFileSync(
        join(dir, 'settings.yaml'),
        `apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: { name: settings }\nspec: { analytics: { enabled: false },
          tracing: { endpoint: "${receiver.endpoint}", exportInterval: 1h, sampleRatio: 0, clientSampling: ${clientSampling} } }\n`,
      );
    write(1);
    const gw = await startGateway({ configPaths: [dir], ...LOOPBACK });
    try {
      assert.equal(recorded(gw.tracer, 20, sampledCaller), 20);
      write(0);
      assert.equal(await gw.reload(), true);
      assert.equal(gw.config.settings.tracing.clientSampling, 0);
      assert.equal(recorded(gw.tracer, 20, sampledCaller), 0);
    } finally {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
