import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, createTraceState } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { flattenSpans, unflattenSpans } from './span-flat.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const resource = resourceFromAttributes({ 'service.name': 'flat-test' });

function span(over: Partial<ReadableSpan>, ctx = { traceId: TRACE, spanId: '00f067aa0ba902b7', traceFlags: 1 }): ReadableSpan {
  return {
    name: 'POST /v1/chat/completions',
    kind: SpanKind.SERVER,
    spanContext: () => ctx,
    parentSpanContext: undefined,
    startTime: [1700000000, 1],
    endTime: [1700000001, 2],
    duration: [1, 1],
    ended: true,
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    resource,
    instrumentationScope: { name: 'tollgate' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ...over,
  };
}

test('spans survive flattening whole: contexts with trace state and remoteness, times, status, attributes, events, links, scope', () => {
  const linked = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0, traceState: createTraceState('a=1') };
  const spans = [
    span(
      {
        kind: SpanKind.CLIENT,
        parentSpanContext: { traceId: TRACE, spanId: '1111111111111111', traceFlags: 1, isRemote: true, traceState: createTraceState('vendor=abc') },
        status: { code: SpanStatusCode.ERROR, message: 'boom' },
        attributes: { 'gen_ai.request.model': 'm', 'tollgate.priority': -1, tags: ['x', 'y'], ok: false },
        events: [{ name: 'retry', time: [1700000000, 5], attributes: { attempt: 2 }, droppedAttributesCount: 0 }],
        links: [{ context: linked, attributes: { why: 'batch' }, droppedAttributesCount: 1 }],
        instrumentationScope: { name: 'tollgate', version: '1.2.3', schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' },
        droppedAttributesCount: 3,
        droppedEventsCount: 4,
        droppedLinksCount: 5,
      },
      { traceId: TRACE, spanId: '2222222222222222', traceFlags: 1, isRemote: false, traceState: createTraceState('vendor=abc') } as never,
    ),
    span({}),
  ];
  assert.deepEqual(unflattenSpans(flattenSpans(spans)), [
    {
      name: 'POST /v1/chat/completions',
      kind: SpanKind.CLIENT,
      context: { traceId: TRACE, spanId: '2222222222222222', traceFlags: 1, isRemote: false, traceState: 'vendor=abc' },
      parent: { traceId: TRACE, spanId: '1111111111111111', traceFlags: 1, isRemote: true, traceState: 'vendor=abc' },
      startTime: [1700000000, 1],
      endTime: [1700000001, 2],
      duration: [1, 1],
      status: { code: SpanStatusCode.ERROR, message: 'boom' },
      attributes: { 'gen_ai.request.model': 'm', 'tollgate.priority': -1, tags: ['x', 'y'], ok: false },
      links: [{ context: { traceId: linked.traceId, spanId: linked.spanId, traceFlags: 0, traceState: 'a=1' }, attributes: { why: 'batch' }, droppedAttributesCount: 1 }],
      events: [{ name: 'retry', time: [1700000000, 5], attributes: { attempt: 2 }, droppedAttributesCount: 0 }],
      scope: { name: 'tollgate', version: '1.2.3', schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' },
      droppedAttributesCount: 3,
      droppedEventsCount: 4,
      droppedLinksCount: 5,
    },
    {
      name: 'POST /v1/chat/completions',
      kind: SpanKind.SERVER,
      context: { traceId: TRACE, spanId: '00f067aa0ba902b7', traceFlags: 1 },
      parent: undefined,
      startTime: [1700000000, 1],
      endTime: [1700000001, 2],
      duration: [1, 1],
      status: { code: SpanStatusCode.UNSET },
      attributes: {},
      links: [],
      events: [],
      scope: { name: 'tollgate' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    },
  ]);
  assert.deepEqual(unflattenSpans(flattenSpans([])), []);
});
