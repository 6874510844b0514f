// Response bodies and SSE events of the OpenAI endpoints (chat, completions, Responses), built per request from the
// choices decided up front (choices.ts): each of a choice's decode steps adds one piece to it.
import { randomUUID } from 'node:crypto';
import { tokenLogprobs, type Choice, type ToolCall } from './choices.js';

export type { FinishReason } from './choices.js';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

export interface FormatContext {
  /** The model name as requested (a served name or a LoRA adapter). */
  model: string;
  includeUsage: boolean;
  choices: Choice[];
  /** Asked for logprobs: how many alternatives per token (0 = only the sampled token's), and their seed. */
  logprobs: { top: number; seed: number } | null;
}

/** One request's output: SSE text for a stream (open, the events of each decode step, close) or a whole JSON body. */
export interface GenerationFormat {
  open(): string;
  /** The events of choice `choice`'s decode step `step` (0 first): its piece. */
  step(choice: number, step: number): string;
  close(usage: Usage): string;
  body(usage: Usage): string;
}

const DONE = 'data: [DONE]\n\n';

function newId(prefix: string): string {
  return `${prefix}${randomUUID().replaceAll('-', '')}`;
}

function openAiUsage(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}

const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

/** Chat's logprobs entry of one token. */
function chatLogprob(ctx: FormatContext, choice: number, step: number, token: string) {
  const lp = tokenLogprobs(ctx.logprobs!.seed, choice, step, token, Math.max(1, ctx.logprobs!.top));
  return {
    token,
    logprob: lp.logprob,
    bytes: utf8(token),
    top_logprobs: lp.top.slice(0, ctx.logprobs!.top).map(([t, l]) => ({ token: t, logprob: l, bytes: utf8(t) })),
  };
}

export function chatFormat(ctx: FormatContext): GenerationFormat {
  const head = { id: newId('chatcmpl-'), object: 'chat.completion.chunk', created: nowSeconds(), model: ctx.model };
  // Per-token chunks are the hot path: the JSON around the token text is built once per choice.
  const usageField = ctx.includeUsage ? ',"usage":null' : '';
  const start = `data: ${JSON.stringify(head).slice(0, -1)},"choices":[{"index":`;
  const prefixes = ctx.choices.map((_, i) => `${start}${i},"delta":{"content":`);
  const suffix = `},"logprobs":null,"finish_reason":null}]${usageField}}\n\n`;
  const chunk = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({ ...head, choices, ...(ctx.includeUsage ? { usage: usage ?? null } : {}) })}\n\n`;
  const logprobsOf = (i: number, step: number, token: string) => (ctx.logprobs ? { content: [chatLogprob(ctx, i, step, token)] } : null);
  return {
    open: () => '',
    step(i, step) {
      const c = ctx.choices[i];
      const piece = c.pieces[step];
      let out = '';
      if (c.toolCall) {
        if (step === 0) {
          const call = { index: 0, id: `chatcmpl-tool-${c.toolCall.id}`, type: 'function', function: { name: c.toolCall.name, arguments: '' } };
          out += chunk([{ index: i, delta: { role: 'assistant', content: null, tool_calls: [call] }, logprobs: null, finish_reason: null }]);
        }
        const delta = { tool_calls: [{ index: 0, function: { arguments: piece } }] };
        return out + chunk([{ index: i, delta, logprobs: logprobsOf(i, step, piece), finish_reason: null }]);
      }
      if (step === 0) out += chunk([{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      if (ctx.logprobs) return out + chunk([{ index: i, delta: { content: piece }, logprobs: logprobsOf(i, step, piece), finish_reason: null }]);
      return `${out}${prefixes[i]}${JSON.stringify(piece)}${suffix}`;
    },
    close(usage) {
      let out = '';
      ctx.choices.forEach((c, i) => (out += chunk([{ index: i, delta: {}, logprobs: null, finish_reason: c.finishReason }])));
      if (ctx.includeUsage) out += chunk([], openAiUsage(usage));
      return out + DONE;
    },
    body: (usage) =>
      JSON.stringify({
        id: head.id,
        object: 'chat.completion',
        created: head.created,
        model: ctx.model,
        choices: ctx.choices.map((c, i) => ({
          index: i,
          message: c.toolCall
            ? { role: 'assistant', content: null, tool_calls: [{ id: `chatcmpl-tool-${c.toolCall.id}`, type: 'function', function: { name: c.toolCall.name, arguments: c.pieces.join('') } }] }
            : { role: 'assistant', content: c.pieces.join('') },
          logprobs: ctx.logprobs ? { content: c.pieces.map((p, step) => chatLogprob(ctx, i, step, p)) } : null,
          finish_reason: c.finishReason,
        })),
        usage: openAiUsage(usage),
      }),
  };
}

/** The legacy completions' logprobs object over `tokens` (prompt tokens first when echoed: their first has none). */
interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export function completionFormat(ctx: FormatContext & { echo: { text: string; tokens: string[] } | null }): GenerationFormat {
  const head = { id: newId('cmpl-'), object: 'text_completion', created: nowSeconds(), model: ctx.model };
  const usageField = ctx.includeUsage ? ',"usage":null' : '';
  const start = `data: ${JSON.stringify(head).slice(0, -1)},"choices":[{"index":`;
  const prefixes = ctx.choices.map((_, i) => `${start}${i},"text":`);
  const suffix = `,"logprobs":null,"finish_reason":null}]${usageField}}\n\n`;
  const chunk = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({ ...head, choices, ...(ctx.includeUsage ? { usage: usage ?? null } : {}) })}\n\n`;
  const echo = ctx.echo;
  /** Logprobs of `tokens`, offsets counted from `offset`; prompt tokens (echo) are steps -n..-1, the first without a value. */
  const logprobs = (i: number, tokens: string[], firstStep: number, offset: number): CompletionLogprobs => {
    const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    tokens.forEach((token, j) => {
      const step = firstStep + j;
      out.tokens.push(token);
      out.text_offset.push(offset);
      offset += token.length;
      if (firstStep < 0 && j === 0) {
        out.token_logprobs.push(null);
        out.top_logprobs.push(null);
        return;
      }
      const lp = tokenLogprobs(ctx.logprobs!.seed, i, step, token, Math.max(1, ctx.logprobs!.top));
      out.token_logprobs.push(lp.logprob);
      out.top_logprobs.push(Object.fromEntries(lp.top.slice(0, Math.max(1, ctx.logprobs!.top))));
    });
    return out;
  };
  const offsets = ctx.choices.map(() => (echo ? echo.text.length : 0));
  return {
    open: () => '',
    step(i, step) {
      const piece = ctx.choices[i].pieces[step];
      let out = '';
      if (step === 0 && echo) {
        const lp = ctx.logprobs ? logprobs(i, echo.tokens, -echo.tokens.length, 0) : null;
        out += chunk([{ index: i, text: echo.text, logprobs: lp, finish_reason: null }]);
      }
      if (!ctx.logprobs) return `${out}${prefixes[i]}${JSON.stringify(piece)}${suffix}`;
      out += chunk([{ index: i, text: piece, logprobs: logprobs(i, [piece], step, offsets[i]), finish_reason: null }]);
      offsets[i] += piece.length;
      return out;
    },
    close(usage) {
      let out = '';
      ctx.choices.forEach((c, i) => (out += chunk([{ index: i, text: '', logprobs: null, finish_reason: c.finishReason }])));
      if (ctx.includeUsage) out += chunk([], openAiUsage(usage));
      return out + DONE;
    },
    body: (usage) =>
      JSON.stringify({
        ...head,
        choices: ctx.choices.map((c, i) => {
          let lp: CompletionLogprobs | null = null;
          if (ctx.logprobs) {
            const prompt = echo ? logprobs(i, echo.tokens, -echo.tokens.length, 0) : null;
            const own = logprobs(i, c.pieces, 0, echo ? echo.text.length : 0);
            lp = prompt
              ? {
                  tokens: [...prompt.tokens, ...own.tokens],
                  token_logprobs: [...prompt.token_logprobs, ...own.token_logprobs],
                  top_logprobs: [...prompt.top_logprobs, ...own.top_logprobs],
                  text_offset: [...prompt.text_offset, ...own.text_offset],
                }
              : own;
          }
          return { index: i, text: (echo ? echo.text : '') + c.pieces.join(''), logprobs: lp, finish_reason: c.finishReason };
        }),
        usage: openAiUsage(usage),
      }),
  };
}

/** What a Responses request asked for that its response object repeats. */
export interface ResponsesEcho {
  maxOutputTokens: number | null;
  instructions: string | null;
  text: unknown;
  temperature: number | null;
  topP: number | null;
  metadata: unknown;
  tools: unknown[];
  toolChoice: unknown;
  previousResponseId: string | null;
  store: boolean;
  /** Told the final response object and its text, when the server stores it. */
  keep?: (response: { id: string } & Record<string, unknown>, text: string) => void;
}

/**
 * The Responses API: the first choice as one output item, an assistant message with one output_text part, or a
 * function_call when the choice calls a tool. Reaching max_output_tokens makes the response "incomplete" (event
 * response.incomplete), as OpenAI reports it; otherwise "completed".
 */
export function responsesFormat(ctx: FormatContext & ResponsesEcho): GenerationFormat {
  const id = newId('resp_');
  const createdAt = nowSeconds();
  const choice = ctx.choices[0];
  const done = choice.finishReason !== 'length';
  let seq = 0;
  let text = '';
  const event = (type: string, fields: object) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
  const response = (status: string, output: unknown[], usage: Usage | null) => ({
    id,
    object: 'response',
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: ctx.instructions,
    max_output_tokens: ctx.maxOutputTokens,
    metadata: ctx.metadata ?? {},
    model: ctx.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: ctx.previousResponseId,
    store: ctx.store,
    temperature: ctx.temperature ?? 1,
    text: ctx.text ?? { format: { type: 'text' } },
    tool_choice: ctx.toolChoice ?? 'auto',
    tools: ctx.tools,
    top_p: ctx.topP ?? 1,
    usage: usage && {
      input_tokens: usage.promptTokens,
      input_tokens_details: { cached_tokens: usage.cachedTokens },
      output_tokens: usage.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
  });
  const finalStatus = done ? 'completed' : 'incomplete';
  const output = choice.toolCall ? functionCallEvents(choice.toolCall, event) : messageEvents(event);
  return {
    open: () =>
      event('response.created', { response: response('in_progress', [], null) }) +
      event('response.in_progress', { response: response('in_progress', [], null) }) +
      output.open(),
    // Only one choice: the Responses API has no n.
    step(_choice, step) {
      const piece = choice.pieces[step];
      text += piece;
      return output.delta(piece);
    },
    close(usage) {
      const final = response(finalStatus, [output.item(finalStatus, text)], usage);
      ctx.keep?.(final, text);
      return output.close(text, finalStatus) + event(`response.${finalStatus}`, { response: final });
    },
    body(usage) {
      const all = choice.pieces.join('');
      const final = response(finalStatus, [output.item(finalStatus, all)], usage);
      ctx.keep?.(final, all);
      return JSON.stringify(final);
    },
  };
}

type ResponsesEvent = (type: string, fields: object) => string;

/** One output item of a Responses answer: the item itself and its streaming events around the text's deltas. */
interface ResponsesItem {
  item(status: string, text: string): object;
  open(): string;
  delta(piece: string): string;
  close(text: string, status: string): string;
}

function messageEvents(event: ResponsesEvent): ResponsesItem {
  const id = newId('msg_');
  const part = (t: string) => ({ type: 'output_text', text: t, annotations: [], logprobs: [] });
  const item = (status: string, content: unknown[]) => ({ id, type: 'message', status, role: 'assistant', content });
  const where = { item_id: id, output_index: 0, content_index: 0 };
  return {
    item: (status, text) => item(status, [part(text)]),
    open: () => event('response.output_item.added', { output_index: 0, item: item('in_progress', []) }) + event('response.content_part.added', { ...where, part: part('') }),
    delta: (piece) => event('response.output_text.delta', { ...where, delta: piece, logprobs: [] }),
    close: (text, status) =>
      event('response.output_text.done', { ...where, text, logprobs: [] }) +
      event('response.content_part.done', { ...where, part: part(text) }) +
      event('response.output_item.done', { output_index: 0, item: item(status, [part(text)]) }),
  };
}

/** A function_call item: its arguments stream as deltas, as OpenAI streams them. */
function functionCallEvents(call: ToolCall, event: ResponsesEvent): ResponsesItem {
  const id = `fc_${call.id}`;
  const item = (status: string, args: string) => ({ id, type: 'function_call', status, arguments: args, call_id: `call_${call.id}`, name: call.name });
  const where = { item_id: id, output_index: 0 };
  return {
    item,
    open: () => event('response.output_item.added', { output_index: 0, item: item('in_progress', '') }),
    delta: (piece) => event('response.function_call_arguments.delta', { ...where, delta: piece }),
    close: (args, status) =>
      event('response.function_call_arguments.done', { ...where, name: call.name, arguments: args }) +
      event('response.output_item.done', { output_index: 0, item: item(status, args) }),
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
