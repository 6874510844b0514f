// What an LLM token quota reserves for a request: prompt tokens, plus the output cap — the client's (or the server's
// default), or one tollgate chooses and sends upstream, so the model cannot produce more than was reserved.
import type { CountOn } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { isPromptBatch, requestedMaxTokens } from '../../prompt-tokens.js';

export interface OutputEstimate {
  /**
   * The most the answer may hold: the client's cap (or the server's default) times `choices` (0 when output is not
   * counted); null when there is none and tollgate must choose one.
   */
  output: number | null;
  /** How many completions the server produces (`n`), each up to the cap: a cap of tollgate's choosing is per choice. */
  choices: number;
  /** The cap per choice an earlier token quota chose (output is then null): one chosen now must not exceed it. */
  chosen?: number;
}

/**
 * The cap per choice tollgate set on each request. A second token quota read the first one's 4,096 as the client's
 * max_tokens, so a product quota of 3,000 refused every request that sent none ("needs up to 4108 tokens").
 */
const chosenCaps = new WeakMap<RequestContext, number>();

/**
 * `n` of chat and completions: every choice may produce the whole cap, so `n: 8` is eight times the output. A
 * completions request's `best_of` candidates are all generated (OpenAI bills them), so it counts when larger; and a
 * completions request with a list of prompts gets that many per prompt (30 prompts reserved as one ran 12× over).
 */
function choicesOf(ctx: RequestContext): number {
  if (ctx.operation !== 'chat.completions' && ctx.operation !== 'completions') return 1;
  const count = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v > 1 ? v : 1);
  if (ctx.operation === 'chat.completions') return count(ctx.body?.n);
  const prompt = ctx.body?.prompt;
  return Math.max(count(ctx.body?.n), count(ctx.body?.best_of)) * (isPromptBatch(prompt) ? prompt.length : 1);
}

/**
 * A completions request without max_tokens gets 16 tokens per choice from OpenAI and vLLM: tollgate reserves that and
 * sets no cap of its own (its 4,096 made the model write up to 256 times what the client asked for). One sent as null
 * is no cap: vLLM then writes to the end of the context.
 */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** The output side of a reservation: the prompt side is the policy's (PromptCalibration corrects it). */
export function estimateOutput(ctx: RequestContext, countOn: CountOn): OutputEstimate {
  if (countOn === 'input' || !ctx.body || ctx.operation === 'embeddings') return { output: 0, choices: 1 };
  const choices = choicesOf(ctx);
  const serverDefault = ctx.operation === 'completions' && ctx.body.max_tokens === undefined ? COMPLETIONS_DEFAULT_MAX_TOKENS : undefined;
  const cap = requestedMaxTokens(ctx.body, ctx.operation) ?? serverDefault;
  const chosen = chosenCaps.get(ctx);
  if (cap !== undefined && cap === chosen) return { output: null, choices, chosen };
  return { output: cap === undefined ? null : cap * choices, choices };
}

/**
 * Sets the output cap per choice upstream, in the field the operation names it: max_output_tokens (Responses),
 * max_completion_tokens (chat: OpenAI's reasoning models refuse max_tokens there; vLLM takes either), max_tokens.
 */
export function setOutputCap(ctx: RequestContext, cap: number): void {
  const body = ctx.body!;
  if (ctx.operation === 'responses') body.max_output_tokens = cap;
  else if (ctx.operation === 'chat.completions') body.max_completion_tokens = cap;
  else body.max_tokens = cap;
  ctx.bodyChanged = true;
  chosenCaps.set(ctx, cap);
}

/** The context length of the request's pool, as its engines report it (vLLM's max_model_len); undefined: unknown. */
export function contextWindow(ctx: RequestContext): number | undefined {
  const pool = ctx.modelConfig?.pool.name;
  return pool === undefined ? undefined : ctx.fleet?.contextWindow?.(pool);
}

/**
 * The most output tokens a choice can have once a prompt of `prompt` tokens is in a context of `window` tokens. A cap
 * of tollgate's choosing above that has the model server refuse a prompt it could have answered
 * (context_length_exceeded). Infinity when the prompt alone fills it: that refusal is the model server's to give.
 */
export function outputRoom(window: number, prompt: number): number {
  if (window - prompt < 1) return Infinity;
  // The server may count the prompt a little longer than tollgate (its template): a refusal for a few tokens teaches
  // the calibration nothing (no usage comes back), so a margin is kept.
  return Math.max(1, window - prompt - roomMargin(prompt));
}

/** Tokens kept free of a cap tollgate sets, beyond the prompt estimate: 32 and 2 % of the prompt. */
export const roomMargin = (prompt: number) => 32 + Math.ceil(prompt * 0.02);
