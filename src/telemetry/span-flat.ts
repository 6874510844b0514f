// Finished spans as one flat array of values for the trip to the export thread. Structured clone pays per object,
// and a span as objects is a dozen of them (contexts, hrtimes, status, attributes, scope): flat, a batch crosses in
// about half the time, and that copy is on the event loop.
import type { Link, SpanContext } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { PlainSpan, PlainSpanContext } from './span-export-protocol.js';

/** The spans of one export, field after field (see flattenSpans for the order). */
export type FlatSpans = unknown[];

function plainContext(c: SpanContext): PlainSpanContext {
  const plain: PlainSpanContext = { traceId: c.traceId, spanId: c.spanId, traceFlags: c.traceFlags };
  if (c.isRemote !== undefined) plain.isRemote = c.isRemote;
  if (c.traceState !== undefined) plain.traceState = c.traceState.serialize();
  return plain;
}

function plainLinks(links: Link[]): PlainSpan['links'] {
  return links.map((l) => ({ context: plainContext(l.context), attributes: l.attributes, droppedAttributesCount: l.droppedAttributesCount }));
}

function pushContext(out: unknown[], c: SpanContext): void {
  out.push(c.traceId, c.spanId, c.traceFlags, c.isRemote, c.traceState?.serialize());
}

/**
 * Per span: name, kind, own context (5 values), whether a parent follows and its context, start/end/duration as
 * seconds and nanoseconds, status code and message, the three dropped counts, the scope's name/version/schema,
 * the attribute count and its key/value pairs, then events and links (rare: cloned as they are, or undefined).
 */
export function flattenSpans(spans: readonly ReadableSpan[]): FlatSpans {
  const out: unknown[] = [];
  for (const s of spans) {
    out.push(s.name, s.kind);
    pushContext(out, s.spanContext());
    const parent = s.parentSpanContext;
    out.push(parent !== undefined);
    if (parent) pushContext(out, parent);
    out.push(s.startTime[0], s.startTime[1], s.endTime[0], s.endTime[1], s.duration[0], s.duration[1]);
    out.push(s.status.code, s.status.message, s.droppedAttributesCount, s.droppedEventsCount, s.droppedLinksCount);
    const scope = s.instrumentationScope;
    out.push(scope.name, scope.version, scope.schemaUrl);
    const attributes = s.attributes;
    const counted = out.length;
    out.push(0);
    let n = 0;
    for (const key in attributes) {
      out.push(key, attributes[key]);
      n++;
    }
    out[counted] = n;
    out.push(s.events.length > 0 ? s.events : undefined, s.links.length > 0 ? plainLinks(s.links) : undefined);
  }
  return out;
}

/** The spans flattenSpans wrote, as plain objects. */
export function unflattenSpans(flat: FlatSpans): PlainSpan[] {
  const spans: PlainSpan[] = [];
  let i = 0;
  const next = () => flat[i++];
  const context = (): PlainSpanContext => {
    const c: PlainSpanContext = { traceId: next() as string, spanId: next() as string, traceFlags: next() as number };
    const isRemote = next() as boolean | undefined;
    const traceState = next() as string | undefined;
    if (isRemote !== undefined) c.isRemote = isRemote;
    if (traceState !== undefined) c.traceState = traceState;
    return c;
  };
  while (i < flat.length) {
    const name = next() as string;
    const kind = next() as PlainSpan['kind'];
    const own = context();
    const parent = next() ? context() : undefined;
    const startTime: [number, number] = [next() as number, next() as number];
    const endTime: [number, number] = [next() as number, next() as number];
    const duration: [number, number] = [next() as number, next() as number];
    const code = next() as PlainSpan['status']['code'];
    const message = next() as string | undefined;
    const droppedAttributesCount = next() as number;
    const droppedEventsCount = next() as number;
    const droppedLinksCount = next() as number;
    const scope: PlainSpan['scope'] = { name: next() as string };
    const version = next() as string | undefined;
    const schemaUrl = next() as string | undefined;
    if (version !== undefined) scope.version = version;
    if (schemaUrl !== undefined) scope.schemaUrl = schemaUrl;
    const attributes: PlainSpan['attributes'] = {};
    for (let n = next() as number; n > 0; n--) {
      const key = next() as string;
      attributes[key] = next() as PlainSpan['attributes'][string];
    }
    const events = (next() as PlainSpan['events'] | undefined) ?? [];
    const links = (next() as PlainSpan['links'] | undefined) ?? [];
    spans.push({
      name,
      kind,
      context: own,
      parent,
      startTime,
      endTime,
      duration,
      status: message === undefined ? { code } : { code, message },
      attributes,
      links,
      events,
      scope,
      droppedAttributesCount,
      droppedEventsCount,
      droppedLinksCount,
    });
  }
  return spans;
}
