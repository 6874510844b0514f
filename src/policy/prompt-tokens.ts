// Token estimates of a request before it runs: the prompt (the shared tokenizer) and the most the model may produce.
import type { RequestContext } from '../gateway/context.js';
import type { OpenAIBody } from '../gateway/openai-request.js';
import { countChatTokens, countTextTokens, type ChatMessage } from '../lib/tokenizer.js';
import type { ApimState } from './types.js';

/** completions/embeddings inputs: text, texts, token ids, or lists of token ids. */
function countInput(input: unknown): number {
  if (typeof input === 'string') return countTextTokens(input);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) {
    if (typeof item === 'string') n += countTextTokens(item);
    else if (typeof item === 'number') n += 1;
    else if (Array.isArray(item)) n += item.length;
    else if (item && typeof item === 'object' && 'role' in item) n += countChatTokens([item as ChatMessage]);
  }
  return n;
}

function estimate(body: OpenAIBody): number {
  if (Array.isArray(body.messages)) return countChatTokens(body.messages);
  let n = countInput(body.prompt ?? body.input);
  if (typeof body.instructions === 'string') n += countTextTokens(body.instructions);
  return n;
}

/** The prompt's tokens, counted once per request however many policies ask. */
export function promptTokens(ctx: RequestContext, state: ApimState): number {
  state.promptTokens ??= ctx.body ? estimate(ctx.body) : 0;
  return state.promptTokens;
}

/** The client's own output cap, or undefined when it gave none. */
export function requestedMaxTokens(body: OpenAIBody): number | undefined {
  return body.max_output_tokens ?? body.max_completion_tokens ?? body.max_tokens;
}
