// Answering from a cache: a stored non-streamed answer as JSON, or replayed as the server-sent events a streaming
// client expects (chunks built from the whole answer, then `[DONE]`), with the request's own response headers.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../gateway/context.js';
import { dropUnsendableHeaders } from '../../gateway/header-values.js';
import type { DirectResponse } from '../../gateway/hooks.js';
import { streamUsageAsked } from '../../gateway/stream-usage.js';
import { showRefundedTokens } from '../rate-limit-headers.js';
import { runRespond } from '../run-steps.js';
import type { RespondStep, Step } from '../types.js';

interface Answer {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  system_fingerprint?: string;
  usage?: unknown;
  choices?: {
    index?: number;
    text?: string;
    finish_reason?: string | null;
    logprobs?: unknown;
    message?: { role?: string; content?: string | null; refusal?: string | null; tool_calls?: { id?: string; type?: string; function?: unknown }[] } & Record<string, unknown>;
  }[];
}

/** The message fields replayed one by one; any other string field (reasoning_content) gets a chunk of its own. */
const KNOWN_MESSAGE = new Set(['role', 'content', 'refusal', 'tool_calls']);

/** Operations whose answers can be cached; only these two can be replayed as a stream. */
export const STREAMABLE = new Set(['chat.completions', 'completions']);

/** The stored answer as the SSE body of a streamed one; undefined when it is not a completion. */
export function answerAsStream(stored: Buffer, includeUsage: boolean): string | undefined {
  let a: Answer;
  try {
    a = JSON.parse(stored.toString('utf8')) as Answer;
  } catch {
    return undefined;
  }
  if (!Array.isArray(a.choices)) return undefined;
  const chat = a.object === 'chat.completion';
  if (!chat && a.object !== 'text_completion') return undefined;
  const head = {
    id: a.id,
    object: chat ? 'chat.completion.chunk' : 'text_completion',
    created: a.created,
    model: a.model,
    ...(a.system_fingerprint !== undefined && { system_fingerprint: a.system_fingerprint }),
  };
  let out = '';
  const event = (choices: unknown[], extra?: object) => {
    out += `data: ${JSON.stringify({ ...head, choices, ...extra })}\n\n`;
  };
  for (const c of a.choices) {
    const index = c.index ?? 0;
    if (chat) {
      const m = c.message ?? {};
      // As vLLM and OpenAI stream it: the role alone first (the openai SDK's stream helper took the logprobs of a
      // first chunk twice), then a reasoning server's reasoning, then the content with its logprobs.
      event([{ index, delta: { role: m.role ?? 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      const reasoning: Record<string, string> = {};
      for (const field in m) if (typeof m[field] === 'string' && !KNOWN_MESSAGE.has(field)) reasoning[field] = m[field] as string;
      if (Object.keys(reasoning).length > 0) event([{ index, delta: reasoning, logprobs: null, finish_reason: null }]);
      const delta = {
        content: m.content ?? null,
        ...(m.refusal != null && { refusal: m.refusal }),
        ...(Array.isArray(m.tool_calls) && { tool_calls: m.tool_calls.map((t, i) => ({ index: i, ...t })) }),
      };
      event([{ index, delta, logprobs: c.logprobs ?? null, finish_reason: null }]);
      event([{ index, delta: {}, logprobs: null, finish_reason: c.finish_reason ?? 'stop' }]);
    } else {
      event([{ index, text: c.text ?? '', logprobs: c.logprobs ?? null, finish_reason: null }]);
      event([{ index, text: '', logprobs: null, finish_reason: c.finish_reason ?? 'stop' }]);
    }
  }
  if (includeUsage && a.usage) event([], { usage: a.usage });
  return `${out}data: [DONE]\n\n`;
}

/**
 * Whether a streaming client asked for the usage chunk itself (not tollgate for its own accounting), as the model server
 * of its request would read it: a hit gives what a miss would have.
 */
function clientWantsUsage(ctx: RequestContext): boolean {
  return ctx.stripStreamUsage !== true && streamUsageAsked(ctx);
}

/** The direct response for a cache hit, in the form the client asked for; undefined when it cannot be given. */
export function cachedAnswer(ctx: RequestContext, stored: Buffer, headers: Record<string, string>): DirectResponse | undefined {
  if (!ctx.stream) return { status: 200, headers: { 'content-type': 'application/json', ...headers }, body: stored };
  const sse = answerAsStream(stored, clientWantsUsage(ctx));
  if (sse === undefined) return undefined;
  return { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers }, body: sse };
}

/**
 * Answers the request with a cache hit. A hit uses no tokens: the reservations token quotas made before the lookup go
 * back when the request ends, and the token headers say so now (they showed the reservation as spent).
 */
export function serveHit(ctx: RequestContext, direct: DirectResponse): void {
  ctx.directResponse = direct;
  ctx.cacheHit = true;
  if (ctx.apim) showRefundedTokens(ctx, ctx.apim);
}

/**
 * The last step of the admit phase of a flow with a cache and response policies: a hit answers without the response
 * flow, and an entry keeps the answer's body alone, so the header changes the response policies of this request
 * make (`x-app: {developer.email}`) are made to its hit here, at the end of admission (the request policies listed
 * after the lookup do not run for a hit), over the headers the policies set for the answer as the proxy hands them
 * to the flow.
 */
export function hitHeaders(respond: readonly RespondStep[]): Step {
  return (ctx, state) => {
    const direct = ctx.directResponse;
    if (!ctx.cacheHit || !direct) return;
    const flow = runRespond(respond, ctx, state, direct.status);
    if (!flow?.headers) return;
    const out: OutgoingHttpHeaders = { ...ctx.responseHeaders, ...direct.headers };
    flow.headers(direct.status, out);
    dropUnsendableHeaders(out);
    // What the flow removed must not come back when the answer is sent (its headers take the policies' missing ones).
    for (const name in ctx.responseHeaders) if (!(name in out)) delete ctx.responseHeaders[name];
    direct.headers = Object.fromEntries(Object.entries(out).map(([name, value]) => [name, String(value)]));
  };
}
