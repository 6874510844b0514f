import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, createTraceState } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { freePort } from '../lib/ports.js';
import { ThreadedSpanExporter } from './threaded-span-exporter.js';

function span(name: string): ReadableSpan {
  const ctx = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, traceState: createTraceState('vendor=abc') };
  return {
    name,
    kind: SpanKind.SERVER,
    spanContext: () => ctx,
    parentSpanContext: { ...ctx, spanId: '1111111111111111', isRemote: true },
    startTime: [1700000000, 0],
    endTime: [1700000000, 5_000_000],
    duration: [0, 5_000_000],
    ended: true,
    status: { code: SpanStatusCode.ERROR, message: 'boom' },
    attributes: { 'gen_ai.request.model': 'm', 'tollgate.priority': 1 },
    links: [],
    events: [{ name: 'retry', time: [1700000000, 1_000_000], attributes: { attempt: 2 } }],
    resource: resourceFromAttributes({ 'service.name': 'threaded-test' }),
    instrumentationScope: { name: 'tollgate' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

const exported = (exporter: ThreadedSpanExporter, spans: ReadableSpan[]) => new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(spans, resolve));

test('spans cross to the export thread whole: OTLP JSON with resource, parent, status, attributes and events', async () => {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(JSON.parse(body));
      res.end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const exporter = new ThreadedSpanExporter(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, {});
  try {
    assert.equal((await exported(exporter, [span('a'), span('b')])).code, 0);
    const rs = (bodies[0] as { resourceSpans: { resource: { attributes: { key: string }[] }; scopeSpans: { spans: Record<string, unknown>[] }[] }[] }).resourceSpans[0];
    assert.ok(rs.resource.attributes.some((a) => a.key === 'service.name'));
    const spans = rs.scopeSpans[0].spans;
    assert.deepEqual(spans.map((s) => s.name), ['a', 'b']);
    assert.equal(spans[0].parentSpanId, '1111111111111111');
    assert.equal(spans[0].traceState, 'vendor=abc');
    assert.deepEqual(spans[0].status, { code: 2, message: 'boom' });
    assert.equal((spans[0].events as { name: string }[])[0].name, 'retry');
  } finally {
    await exporter.shutdown();
    server.close();
  }
});

test('an unreachable collector fails the export instead of hanging; after shutdown exports fail at once', async () => {
  const port = await freePort();
  const exporter = new ThreadedSpanExporter(`http://127.0.0.1:${port}/v1/traces`, {});
  // The export thread is unref'd (it must not hold a process open): something has to while the export retries.
  const alive = setInterval(() => {}, 1000);
  assert.equal((await exported(exporter, [span('lost')])).code, 1);
  clearInterval(alive);
  await exporter.shutdown();
  await exporter.shutdown();
  const after = await exported(exporter, [span('late')]);
  assert.equal(after.code, 1);
  assert.match(String(after.error?.message), /exited/);
});
