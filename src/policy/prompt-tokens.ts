// Token estimates of a request before it runs: the prompt (the shared tokenizer) and the most the model may produce.
import type { RequestContext } from '../gateway/context.js';
import type { OpenAIBody, Operation } from '../gateway/openai-request.js';
import { countWalk } from '../lib/token-count-thread.js';
import { chatWalk, messageText, type ChatMessage, type CountWalk } from '../lib/tokenizer.js';
import type { ApimState } from './types.js';

/**
 * Fields of a Responses API input item that hold text the model server renders: a message's content, a tool call's
 * arguments (a custom tool's input), a tool result's output, a reasoning item's summary. A string or text parts.
 */
const ITEM_TEXT = ['content', 'arguments', 'input', 'output', 'summary'] as const;

/**
 * A Responses API input item without a role as the chat message a server renders it as (the simulator does the same):
 * a tool's result (`function_call_output`, `custom_tool_call_output`, ...) as the tool's turn, a call as the
 * assistant's, an untyped item as the user's. Counted as nothing, a 2,900-token function_call_output went past a
 * 2,000-token quota, and its shortfall raised every tenant's calibrated estimate.
 */
function itemMessage(item: Record<string, unknown>): ChatMessage {
  const type = typeof item.type === 'string' ? item.type : undefined;
  const role = type === undefined ? 'user' : type.endsWith('_output') ? 'tool' : 'assistant';
  let content = '';
  for (const field of ITEM_TEXT) {
    const v = item[field];
    if (typeof v === 'string' || Array.isArray(v)) content += messageText(v as ChatMessage['content']);
  }
  return { role, content };
}

/** An input item with a role as the chat message it is, its role read only when it is text. */
function asMessage(item: Record<string, unknown>): ChatMessage {
  return typeof item.role === 'string' ? (item as unknown as ChatMessage) : { ...(item as unknown as ChatMessage), role: '' };
}

/** A list of strings, or of token-id lists, is a batch of prompts; a string or one token-id list is one prompt. */
export function isPromptBatch(prompt: unknown): prompt is unknown[] {
  return Array.isArray(prompt) && prompt.length > 0 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]));
}

/** completions/embeddings inputs: text, texts, token ids, or lists of token ids; Responses API input items. */
function* countInput(input: unknown, budget: number): CountWalk {
  if (typeof input === 'string') return yield { text: input, budget };
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) {
    if (n > budget) break;
    if (typeof item === 'string') n += yield { text: item, budget: budget - n };
    else if (typeof item === 'number') n += 1;
    else if (Array.isArray(item)) n += item.length;
    else if (item && typeof item === 'object') {
      // Input items are not checked (the responses API has many kinds): a role that is no string is counted as none
      // (one whose toString is no function threw as it was written out, a 500).
      const message = 'role' in item ? asMessage(item as Record<string, unknown>) : itemMessage(item as Record<string, unknown>);
      n += yield* chatWalk([message], budget - n);
    }
  }
  return n;
}

/** Tool definitions are part of the prompt a model server renders (its chat template writes them out). */
function* countTools(tools: unknown, budget: number): CountWalk {
  return Array.isArray(tools) && tools.length > 0 ? yield { text: JSON.stringify(tools), budget } : 0;
}

function* estimate(body: OpenAIBody, budget: number): CountWalk {
  if (Array.isArray(body.messages)) {
    const n = yield* chatWalk(body.messages, budget);
    return n + (yield* countTools(body.tools, budget - n));
  }
  let n = yield* countInput(body.prompt ?? body.input, budget);
  n += yield* countTools(body.tools, budget - n);
  if (typeof body.instructions === 'string') n += yield { text: body.instructions, budget: budget - n };
  return n;
}

/**
 * The prompt's tokens, counted once per request however many policies ask: a follow-up's stored conversation
 * (ctx.historyTokens, which its server puts before the input and bills as input) with what the request itself holds.
 * With a `budget` (a policy refuses any prompt above it), counting stops past it and the answer is only some number
 * above it, kept for no one. A promise when a long text of the prompt is counted off the event loop (countWalk), a
 * number otherwise.
 */
export function promptTokens(ctx: RequestContext, state: ApimState, budget = Infinity): number | Promise<number> {
  if (state.promptTokens !== undefined) return state.promptTokens;
  const history = ctx.historyTokens ?? 0;
  if (history > budget) return history;
  const keep = (n: number) => {
    const total = history + n;
    if (total <= budget) state.promptTokens = total;
    return total;
  };
  const n = ctx.body ? countWalk(estimate(ctx.body, budget - history), ctx.fairnessId) : 0;
  return typeof n === 'number' ? keep(n) : n.then(keep);
}

/**
 * The tokens of the longest single prompt, as `promptTokens` counts (and with its budget): a completions batch runs
 * each prompt in its own context, so the room a context length leaves an answer is the longest prompt's, not the
 * batch's (42 prompts of 193 tokens on an 8,192-token model had each answer cut to one token).
 */
export function longestPromptTokens(ctx: RequestContext, state: ApimState, budget = Infinity): number | Promise<number> {
  const prompt = ctx.body?.prompt;
  if (ctx.operation !== 'completions' || !isPromptBatch(prompt)) return promptTokens(ctx, state, budget);
  return countWalk(longest(prompt, budget), ctx.fairnessId);
}

function* longest(prompts: unknown[], budget: number): CountWalk {
  let most = 0;
  for (const one of prompts) {
    most = Math.max(most, yield* countInput(one, budget));
    if (most > budget) break;
  }
  return most;
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
