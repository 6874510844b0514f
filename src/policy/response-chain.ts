// Chaining the policies' response flows into the one the proxy applies: headers in order, the body and each
// event piped through every rewrite in order (a dropped event stops there), a flow's events at a stream's end through
// the rewrites after it, end for all.
import type { OutgoingHttpHeaders } from 'node:http';
import type { ResponseFlow } from '../gateway/hooks.js';
import { pipeEvents } from '../gateway/sse-rewriter.js';

type BodyRewrite = NonNullable<ResponseFlow['body']>;

/**
 * One flow stays itself; several become one that calls each in order. Only the parts someone has are present.
 * Flows that only observe (a cache filling) come after every rewrite, wherever they were listed: what a cache keeps is
 * what the client received, so a replay (which bypasses the response flow) never skips a sanitizer listed after it.
 */
export function chainResponseFlows(listed: readonly ResponseFlow[]): ResponseFlow | undefined {
  if (listed.length <= 1) return listed[0];
  const flows = [...listed.filter((f) => !f.observes), ...listed.filter((f) => f.observes)];
  const headers = flows.filter((f) => f.headers);
  const bodies = flows.filter((f) => f.body).map((f) => f.body!.bind(f));
  const events = flows.filter((f) => f.event).map((f) => f.event!.bind(f));
  const ends = flows.filter((f) => f.end);
  const atEnd = flows.some((f) => f.eventsAtEnd);
  return {
    ...(headers.length > 0 && { headers: (status: number, out: OutgoingHttpHeaders) => { for (const f of headers) f.headers!(status, out); } }),
    ...(bodies.length > 0 && { body: pipeBodies(bodies) }),
    ...(events.length > 0 && { event: pipeEvents(events) }),
    ...(atEnd && { eventsAtEnd: () => eventsAtEnd(flows) }),
    ...(ends.length > 0 && { end: () => { for (const f of ends) f.end!(); } }),
    ...(flows.every((f) => f.observes) && { observes: true, observeLimit: observeLimitOf(flows) }),
  };
}

/** Each flow's last events, through the event rewrites of the flows after it, as any of its events would go. */
function eventsAtEnd(flows: readonly ResponseFlow[]): string[] {
  let out: string[] = [];
  for (const f of flows) {
    if (f.event && out.length > 0) out = out.flatMap((data) => f.event!(data) ?? []);
    if (f.eventsAtEnd) out = [...out, ...f.eventsAtEnd()];
  }
  return out;
}

/** Observers share one copy of the answer: as large as the largest of them reads (each still judges its own limit). */
function observeLimitOf(flows: readonly ResponseFlow[]): number | undefined {
  let limit = 0;
  for (const f of flows) {
    if (!f.body) continue;
    if (f.observeLimit === undefined) return undefined;
    limit = Math.max(limit, f.observeLimit);
  }
  return limit;
}

function pipeBodies(rewrites: readonly BodyRewrite[]): BodyRewrite {
  if (rewrites.length === 1) return rewrites[0];
  return (body, status) => {
    // Synchronous rewrites stay synchronous; the first promise makes the rest wait for it.
    for (let i = 0; i < rewrites.length; i++) {
      const out = rewrites[i](body, status);
      if (!Buffer.isBuffer(out)) return finishBodies(out, rewrites, i + 1, status);
      body = out;
    }
    return body;
  };
}

async function finishBodies(pending: Promise<Buffer>, rewrites: readonly BodyRewrite[], from: number, status: number): Promise<Buffer> {
  let body = await pending;
  for (let i = from; i < rewrites.length; i++) body = await rewrites[i](body, status);
  return body;
}
