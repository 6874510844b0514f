// The usage of an answer once it is over, estimated for a stream that reached its client without the model server's
// usage chunk (the client hung up, the server died mid-stream, a server that ignores include_usage), for a whole JSON
// answer whose server reported none, or for a request whose client hung up before any of its answer came: a token
// quota reconciles to it and the usage record carries it, so the two charge the same tokens and billing from records
// matches what the quota enforced.
import type { GatewaySettings } from '../config/settings.js';
import { OFF_LOOP_CHARS } from '../lib/token-count-thread.js';
import { countTextTokensUncached, loadTokenizer } from '../lib/tokenizer.js';
import { promptTokens } from '../policy/prompt-tokens.js';
// The picker's rule of thumb, for the bytes of a prompt no policy counted.
import { CHARS_PER_TOKEN } from '../scheduler/endpoint-state.js';
import { generatedText } from './answer-text.js';
import type { RequestContext } from './context.js';
import type { Usage, UsageScanner } from './usage.js';
import { isSuccess } from './http-status.js';
import { streamUsageAsked } from './stream-usage.js';

/**
 * The usage the scanner read; without one, the prompt as tollgate counts it and, marked estimated: one output token
 * per content event streamed (UsageScanner.contentEvents) for a 2xx event stream that was to report it and of which
 * the client got bytes; the tokens of the generated text of a whole 2xx JSON answer (unreportedText); none for a
 * request whose client hung up after it went to a model server and before anything of an answer not known to have
 * failed reached it. Anything else (a JSON answer cut short, a model server's error, a compressed stream, a stream
 * nobody asked usage of) stays without usage.
 * @example ctx.usage = usageAtEnd(ctx, scanner);
 */
export function usageAtEnd(ctx: RequestContext, scanner: UsageScanner | null): Usage | undefined {
  const usage = scanner?.end();
  if (usage) return usage;
  if (cutStream(ctx, scanner) || hungUpUnanswered(ctx)) return estimated(ctx, scanner?.contentEvents ?? 0);
  const text = unreportedText(ctx, scanner);
  // Within OFF_LOOP_CHARS counted on the event loop (a few ms at most); a longer text is estimated from its size.
  if (text !== undefined) return estimated(ctx, text.length <= OFF_LOOP_CHARS ? countTextTokensUncached(text) : Math.ceil(text.length / CHARS_PER_TOKEN));
  return undefined;
}

const estimated = (ctx: RequestContext, outputTokens: number): Usage => ({ inputTokens: promptEstimate(ctx), outputTokens, cachedTokens: 0, estimated: true });

const cutStream = (ctx: RequestContext, scanner: UsageScanner | null) => scanner?.stream === true && ctx.bytesOut > 0 && isSuccess(ctx.upstreamStatus) && usageAsked(ctx);

/**
 * The model server had the request and had not refused it, so it worked on it: vLLM sends a non-streamed answer's head
 * only once the generation is over, and a hang-up just before got the generation free, again and again. A stored
 * response read, cancelled or deleted is no generation.
 */
const hungUpUnanswered = (ctx: RequestContext) =>
  ctx.errorCode === 'client_closed' &&
  readsTokens(ctx) &&
  ctx.sentUpstream === true &&
  ctx.bytesOut === 0 &&
  (ctx.upstreamStatus === undefined || isSuccess(ctx.upstreamStatus)) &&
  !ctx.storedResponse &&
  (!ctx.stream || usageAsked(ctx));

/**
 * The generated text of a whole 2xx JSON answer its model server sent without usage, for a request that went to one
 * and ended well; an embeddings answer generates none. Before, the token quota kept the whole reservation (prompt and
 * output cap) and the usage record had no tokens: the two disagreed, where a stream without its usage chunk was
 * estimated. Not a Responses answer that is not over (generatedText), nor a stored response read.
 */
function unreportedText(ctx: RequestContext, scanner: UsageScanner | null): string | undefined {
  const body = scanner?.unreported;
  if (!body || ctx.operation === undefined || ctx.errorCode !== undefined || !isSuccess(ctx.upstreamStatus)) return undefined;
  if (ctx.sentUpstream !== true || ctx.storedResponse || !readsTokens(ctx)) return undefined;
  return ctx.operation === 'embeddings' ? '' : generatedText(body);
}

/** Only when something reads the estimate: counting a prompt no policy counted could load the tokenizer mid-traffic. */
const readsTokens = (ctx: RequestContext) => ctx.apim?.promptTokens !== undefined || (ctx.config !== undefined && metered(ctx.config.settings));

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
