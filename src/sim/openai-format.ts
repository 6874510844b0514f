// Response bodies and SSE events of the OpenAI endpoints (chat, completions, Responses), built per request.
import { randomUUID } from 'node:crypto';

export type FinishReason = 'stop' | 'length';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

export interface FormatContext {
  /** The model name as requested (a served name or a LoRA adapter). */
  model: string;
  includeUsage: boolean;
  finishReason: FinishReason;
}

/** One request's output: SSE text for a stream (open, one event per token, close) or a whole JSON body. */
export interface GenerationFormat {
  open(): string;
  token(piece: string): string;
  close(usage: Usage): string;
  body(text: string, usage: Usage): string;
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

export function chatFormat(ctx: FormatContext): GenerationFormat {
  const head = { id: newId('chatcmpl-'), object: 'chat.completion.chunk', created: nowSeconds(), model: ctx.model };
  // Per-token chunks are the hot path: the JSON around the token text is built once.
  const usageField = ctx.includeUsage ? ',"usage":null' : '';
  const prefix = `data: ${JSON.stringify(head).slice(0, -1)},"choices":[{"index":0,"delta":{"content":`;
  const suffix = `},"logprobs":null,"finish_reason":null}]${usageField}}\n\n`;
  let first = true;
  const chunk = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({ ...head, choices, ...(ctx.includeUsage ? { usage: usage ?? null } : {}) })}\n\n`;
  return {
    open: () => '',
    token(piece) {
      const text = `${prefix}${JSON.stringify(piece)}${suffix}`;
      if (!first) return text;
      first = false;
      return chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]) + text;
    },
    close(usage) {
      let out = chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: ctx.finishReason }]);
      if (ctx.includeUsage) out += chunk([], openAiUsage(usage));
      return out + DONE;
    },
    body: (text, usage) =>
      JSON.stringify({
        id: head.id,
        object: 'chat.completion',
        created: head.created,
        model: ctx.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: ctx.finishReason }],
        usage: openAiUsage(usage),
      }),
  };
}

export function completionFormat(ctx: FormatContext): GenerationFormat {
  const head = { id: newId('cmpl-'), object: 'text_completion', created: nowSeconds(), model: ctx.model };
  const usageField = ctx.includeUsage ? ',"usage":null' : '';
  const prefix = `data: ${JSON.stringify(head).slice(0, -1)},"choices":[{"index":0,"text":`;
  const suffix = `,"logprobs":null,"finish_reason":null}]${usageField}}\n\n`;
  const chunk = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({ ...head, choices, ...(ctx.includeUsage ? { usage: usage ?? null } : {}) })}\n\n`;
  return {
    open: () => '',
    token: (piece) => `${prefix}${JSON.stringify(piece)}${suffix}`,
    close(usage) {
      let out = chunk([{ index: 0, text: '', logprobs: null, finish_reason: ctx.finishReason }]);
      if (ctx.includeUsage) out += chunk([], openAiUsage(usage));
      return out + DONE;
    },
    body: (text, usage) =>
      JSON.stringify({
        ...head,
        choices: [{ index: 0, text, logprobs: null, finish_reason: ctx.finishReason }],
        usage: openAiUsage(usage),
      }),
  };
}

/**
 * The Responses API: one assistant message with one output_text part. Reaching max_output_tokens makes the
 * response "incomplete" (event response.incomplete), as OpenAI reports it; otherwise "completed".
 */
export function responsesFormat(ctx: FormatContext & { maxOutputTokens: number | null }): GenerationFormat {
  const id = newId('resp_');
  const itemId = newId('msg_');
  const createdAt = nowSeconds();
  const done = ctx.finishReason === 'stop';
  let seq = 0;
  let text = '';
  const event = (type: string, fields: object) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
  const part = (t: string) => ({ type: 'output_text', text: t, annotations: [] });
  const item = (status: string, content: unknown[]) => ({ id: itemId, type: 'message', status, role: 'assistant', content });
  const response = (status: string, output: unknown[], usage: Usage | null) => ({
    id,
    object: 'response',
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: null,
    max_output_tokens: ctx.maxOutputTokens,
    model: ctx.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    store: false,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    usage: usage && {
      input_tokens: usage.promptTokens,
      input_tokens_details: { cached_tokens: usage.cachedTokens },
      output_tokens: usage.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
  });
  const finalStatus = done ? 'completed' : 'incomplete';
  const where = { item_id: itemId, output_index: 0, content_index: 0 };
  return {
    open: () =>
      event('response.created', { response: response('in_progress', [], null) }) +
      event('response.in_progress', { response: response('in_progress', [], null) }) +
      event('response.output_item.added', { output_index: 0, item: item('in_progress', []) }) +
      event('response.content_part.added', { ...where, part: part('') }),
    token(piece) {
      text += piece;
      return event('response.output_text.delta', { ...where, delta: piece, logprobs: [] });
    },
    close: (usage) =>
      event('response.output_text.done', { ...where, text, logprobs: [] }) +
      event('response.content_part.done', { ...where, part: part(text) }) +
      event('response.output_item.done', { output_index: 0, item: item(finalStatus, [part(text)]) }) +
      event(`response.${finalStatus}`, { response: response(finalStatus, [item(finalStatus, [part(text)])], usage) }),
    body: (full, usage) => JSON.stringify(response(finalStatus, [item(finalStatus, [part(full)])], usage)),
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
