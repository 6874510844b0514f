// Token estimates of a request before it runs: the prompt (the shared tokenizer) and the most the model may produce.
import type { RequestContext } from '../gateway/context.js';
import type { OpenAIBody, Operation } from '../gateway/openai-request.js';
import { countChatTokens, countTextTokens, type ChatMessage } from '../lib/tokenizer.js';
import type { ApimState } from './types.js';

/** completions/embeddings inputs: text, texts, token ids, or lists of token ids. */
function countInput(input: unknown, budget: number): number {
  if (typeof input === 'string') return countTextTokens(input, budget);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) {
    if (n > budget) break;
    if (typeof item === 'string') n += countTextTokens(item, budget - n);
    else if (typeof item === 'number') n += 1;
    else if (Array.isArray(item)) n += item.length;
    else if (item && typeof item === 'object' && 'role' in item) n += countChatTokens([item as ChatMessage], budget - n);
  }
  return n;
}

/** Tool definitions are part of the prompt a model server renders (its chat template writes them out). */
function countTools(tools: unknown, budget: number): number {
  return Array.isArray(tools) && tools.length > 0 ? countTextTokens(JSON.stringify(tools), budget) : 0;
}

function estimate(body: OpenAIBody, budget: number): number {
  if (Array.isArray(body.messages)) {
    const n = countChatTokens(body.messages, budget);
    return n + countTools(body.tools, budget - n);
  }
  let n = countInput(body.prompt ?? body.input, budget);
  n += countTools(body.tools, budget - n);
  if (typeof body.instructions === 'string') n += countTextTokens(body.instructions, budget - n);
  return n;
}

/**
 * The prompt's tokens, counted once per request however many policies ask. With a `budget` (a policy refuses any
 * prompt above it), counting stops past it and the answer is only some number above it, kept for no one.
 */
export function promptTokens(ctx: RequestContext, state: ApimState, budget = Infinity): number {
  if (state.promptTokens !== undefined) return state.promptTokens;
  const n = ctx.body ? estimate(ctx.body, budget) : 0;
  if (n <= budget) state.promptTokens = n;
  return n;
}

/**
 * The client's own output cap as a model server of this operation honours it, or undefined when it gave none there.
 * Only the operation's own fields count: a chat server ignores max_output_tokens and a completions server ignores
 * max_completion_tokens, so taking the first field present let `max_output_tokens: 1, max_tokens: 5000` reserve one
 * token while the model produced 5,000. Chat servers differ on which of max_completion_tokens and max_tokens wins,
 * so the larger counts.
 */
export function requestedMaxTokens(body: OpenAIBody, operation: Operation | undefined): number | undefined {
  if (operation === 'responses') return body.max_output_tokens ?? undefined;
  if (operation === 'completions') return body.max_tokens ?? undefined;
  const a = body.max_completion_tokens ?? undefined;
  const b = body.max_tokens ?? undefined;
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}
