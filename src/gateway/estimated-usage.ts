// The usage of an answer once it is over, estimated for a stream that reached its client without the model server's
// usage chunk (the client hung up, the server died mid-stream, a server that ignores include_usage), or for a request
// whose client hung up before any of its answer came: a token quota reconciles to it and the usage record carries it,
// so the two charge the same tokens and billing from records matches what the quota enforced.
import type { GatewaySettings } from '../config/settings.js';
import { OFF_LOOP_CHARS } from '../lib/token-count-thread.js';
import { loadTokenizer } from '../lib/tokenizer.js';
import { promptTokens } from '../policy/prompt-tokens.js';
// The picker's rule of thumb, for the bytes of a prompt no policy counted.
import { CHARS_PER_TOKEN } from '../scheduler/endpoint-state.js';
import type { RequestContext } from './context.js';
import type { Usage, UsageScanner } from './usage.js';
import { isSuccess } from './http-status.js';
import { streamUsageAsked } from './stream-usage.js';


/**
 * The usage the scanner read; without one, the prompt as tollgate counts it and one output token per content event
 * streamed (UsageScanner.contentEvents), marked estimated, for a 2xx event stream that was to report it and of which
 * the client got bytes, or for a request whose client hung up after it went to a model server and before anything of
 * an answer not known to have failed reached it (none: its prompt alone). Anything else (a JSON answer cut short,
 * a model server's error, a compressed stream, a stream nobody asked usage of) stays without usage.
 * @example ctx.usage = usageAtEnd(ctx, scanner);
 */
export function usageAtEnd(ctx: RequestContext, scanner: UsageScanner | null): Usage | undefined {
  const usage = scanner?.end();
  if (usage || !(cutStream(ctx, scanner) || hungUpUnanswered(ctx))) return usage;
  return { inputTokens: promptEstimate(ctx), outputTokens: scanner?.contentEvents ?? 0, cachedTokens: 0, estimated: true };
}

const cutStream = (ctx: RequestContext, scanner: UsageScanner | null) => scanner?.stream === true && ctx.bytesOut > 0 && isSuccess(ctx.upstreamStatus) && usageAsked(ctx);

/**
 * The model server had the request and had not refused it, so it worked on it: vLLM sends a non-streamed answer's head
 * only once the generation is over, and a hang-up just before got the generation free, again and again. A stored
 * response read, cancelled or deleted is no generation.
 */
const hungUpUnanswered = (ctx: RequestContext) =>
  ctx.errorCode === 'client_closed' &&
  // Only when something reads the estimate: counting a prompt no policy counted could load the tokenizer mid-traffic.
  (ctx.apim?.promptTokens !== undefined || (ctx.config !== undefined && metered(ctx.config.settings))) &&
  ctx.sentUpstream === true &&
  ctx.bytesOut === 0 &&
  (ctx.upstreamStatus === undefined || isSuccess(ctx.upstreamStatus)) &&
  !ctx.storedResponse &&
  (!ctx.stream || usageAsked(ctx));

/**
 * Loads the tokenizer now when streams are metered (records or request metrics on), so usageAtEnd has it: the first
 * stream cut short would load it mid-traffic instead, ~200 ms on the event loop with every request behind it (in
 * `bench routing`, a gateway's first client hang-up held the next four requests' first tokens for up to 0.6
 * simulated s). Called before the listeners open and with each configuration applied.
 */
export function prepareUsageEstimates(settings: GatewaySettings): void {
  if (metered(settings)) loadTokenizer();
}

/** Usage records or request metrics read each request's tokens. */
const metered = (settings: GatewaySettings) => settings.analytics.enabled || settings.metrics.requests;

/**
 * The stream was to end with its usage (the Responses API always reports it; chat and completions when asked, as
 * tollgate asks for records, metrics and token quotas, or as the pool's engine reads `stream_options: {}`): otherwise nobody reads tokens, and with observability off no
 * stream should pay for a prompt count.
 */
const usageAsked = (ctx: RequestContext) => ctx.operation === 'responses' || streamUsageAsked(ctx);

/**
 * The prompt's tokens as the token policies counted them (the same figure their reservation started from); a
 * prompt none counted is counted now the same way when its body is small enough to count on the event loop (a few
 * ms at most), and a larger one estimated from its size: a stream cut is no reason to wait for a tokenizer thread.
 */
function promptEstimate(ctx: RequestContext): number {
  const state = ctx.apim ?? {};
  if (state.promptTokens !== undefined) return state.promptTokens;
  // A text is no longer than the body that carried it, so within OFF_LOOP_CHARS the count stays on the event loop;
  // only a body a policy enlarged could still need the thread, and then the size decides.
  const counted = ctx.bytesIn <= OFF_LOOP_CHARS ? promptTokens(ctx, state) : undefined;
  if (typeof counted === 'number') return counted;
  counted?.catch(() => {});
  return Math.ceil(ctx.bytesIn / CHARS_PER_TOKEN);
}
