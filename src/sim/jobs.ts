// Turns OpenAI request bodies into simulator work: which model or adapter, the prompt, how many tokens to generate.
import type { z } from 'zod';
import { decodeTokens, type ChatMessage } from '../lib/tokenizer.js';
import { hashInts, hashString } from './hash.js';
import { HttpError, invalidRequest } from './http-io.js';
import { promptBlockHashes } from './kv-cache.js';
import { buildChoices, type FinishReason, type OutputKind, type ToolSpec } from './choices.js';
import { chatFormat, completionFormat, responsesFormat, type FormatContext, type GenerationFormat } from './openai-format.js';
import {
  chatRequest,
  completionRequest,
  embeddingsRequest,
  responsesRequest,
  type ChatRequest,
  type ResponsesRequest,
} from './openai-schemas.js';
import { PromptError, chatPrompt, embeddingInput, textPrompt, type Prompt } from './prompt.js';
import type { SimResponseStore } from './response-store.js';

export type GenerationEndpoint = 'chat' | 'completions' | 'responses';

/** What a server serves and its limits. */
export interface Catalog {
  /** Served model names; the first is the base model (metrics label, LoRA parent). */
  models: readonly string[];
  loras: readonly string[];
  maxModelLen: number;
  /** Cap on drawn output lengths when a request sets no max tokens. */
  maxOutputTokens: number;
  seed: number;
}

export interface GenerationJob {
  /** The model name as requested, echoed in responses. */
  model: string;
  lora?: string;
  prompt: Prompt;
  blockHashes: number[];
  /** Tokens of each choice: one sequence each, as vLLM runs n samples as n requests. */
  choiceTokens: number[];
  /** Tokens of every choice together (usage's completion_tokens). */
  completionTokens: number;
  /** The first choice's (the metrics label). */
  finishReason: FinishReason;
  stream: boolean;
  format: GenerationFormat;
  textSeed: number;
}

export interface EmbeddingJob {
  model: string;
  lora?: string;
  texts: string[];
  promptTokens: number;
  base64: boolean;
  dimensions?: number;
}

/** The request fields that shape the answer, whichever endpoint named them. */
interface Asked {
  /** Left out: the base model, as vLLM serves it. */
  model: string | null | undefined;
  prompt: Prompt;
  maxTokens: number | null | undefined;
  /** vLLM cuts the Responses API's max_output_tokens to the room the context leaves, where chat and completions refuse. */
  clampMaxTokens: boolean;
  stream: boolean;
  includeUsage: boolean;
  seed: number | null | undefined;
  ignoreEos: boolean | null | undefined;
  minTokens: number | null | undefined;
  n: number;
  stop: string[];
  output: OutputKind;
  /** Alternatives per token when logprobs were asked for. */
  logprobs: number | null;
}

const stopList = (stop: string | string[] | null | undefined): string[] => (stop == null ? [] : typeof stop === 'string' ? [stop] : stop);

/** What chat and completions requests ask alike (the sampling and streaming fields they share). */
function sampled(r: {
  model?: string | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  seed?: number | null;
  ignore_eos?: boolean | null;
  min_tokens?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
}): Pick<Asked, 'model' | 'stream' | 'includeUsage' | 'seed' | 'ignoreEos' | 'minTokens' | 'n' | 'stop'> {
  // vLLM's check, where an empty object counts as none (Python's truth value of a dict).
  if (r.stream !== true && r.stream_options != null && Object.keys(r.stream_options).length > 0) {
    throw invalidRequest('Stream options can only be defined when `stream=True`.', 'stream_options');
  }
  // include_usage defaults to true in vLLM's StreamOptions: `stream_options: {}` asks for usage too (null does not).
  const usage = r.stream_options?.include_usage;
  return {
    model: r.model,
    stream: r.stream === true,
    includeUsage: r.stream === true && r.stream_options != null && (usage === undefined || usage === true),
    seed: r.seed,
    ignoreEos: r.ignore_eos,
    minTokens: r.min_tokens,
    n: r.n ?? 1,
    stop: stopList(r.stop),
  };
}

/** `responses`: the server's stored Responses answers (what previous_response_id continues, where new ones go). */
export function generationJob(endpoint: GenerationEndpoint, body: unknown, catalog: Catalog, responses?: SimResponseStore): GenerationJob {
  let asked: Asked;
  let makeFormat: (ctx: FormatContext) => GenerationFormat;
  if (endpoint === 'chat') {
    const r = parse(chatRequest, body);
    if (r.top_logprobs != null && r.top_logprobs > 0 && r.logprobs !== true) throw invalidRequest('"top_logprobs": requires "logprobs" to be true');
    asked = {
      ...sampled(r),
      clampMaxTokens: false,
      // As sent, not as parsed (which drops tool_calls and may reorder keys): the messages and tools the gateway laid out.
      prompt: tokenize(() => chatPrompt((body as { messages: ChatMessage[] }).messages, catalog.maxModelLen, (body as { tools?: unknown }).tools)),
      maxTokens: r.max_completion_tokens ?? r.max_tokens,
      output: chatOutput(r),
      logprobs: r.logprobs === true ? (r.top_logprobs ?? 0) : null,
    };
    makeFormat = chatFormat;
  } else if (endpoint === 'completions') {
    const r = parse(completionRequest, body);
    // vLLM's OpenAI server refuses it the same way.
    if (r.suffix != null) throw invalidRequest('"suffix": suffix is not currently supported');
    const source = singlePrompt(r.prompt);
    const prompt = tokenize(() => textPrompt(source, catalog.maxModelLen));
    asked = {
      ...sampled(r),
      clampMaxTokens: false,
      prompt,
      // vLLM's (and OpenAI's) completions default: 16 tokens when max_tokens is left out; null is no cap.
      maxTokens: r.max_tokens === undefined ? 16 : r.max_tokens,
      output: { kind: 'text' },
      logprobs: r.logprobs ?? null,
    };
    const echo = r.echo === true ? echoOf(source, prompt) : null;
    makeFormat = (ctx) => completionFormat({ ...ctx, echo });
  } else {
    const r = parse(responsesRequest, body);
    const previousId = r.previous_response_id ?? null;
    const previous = previousId === null ? undefined : responses?.get(previousId);
    // vLLM's answer for a response it does not hold (never stored, deleted, or on another server).
    if (previousId !== null && !previous) throw responseNotFound(previousId);
    const turn = [...(previous?.conversation ?? []), ...responsesInput(r)];
    const messages: ChatMessage[] = r.instructions ? [{ role: 'system', content: r.instructions }, ...turn] : turn;
    const store = r.store !== false && responses !== undefined;
    asked = {
      model: r.model,
      stream: r.stream === true,
      prompt: tokenize(() => chatPrompt(messages, catalog.maxModelLen, (body as { tools?: unknown }).tools)),
      maxTokens: r.max_output_tokens,
      clampMaxTokens: true,
      includeUsage: false,
      seed: r.seed,
      ignoreEos: r.ignore_eos,
      minTokens: r.min_tokens,
      n: 1,
      stop: [],
      output: responsesOutput(r, messages),
      logprobs: null,
    };
    makeFormat = (ctx) =>
      responsesFormat({
        ...ctx,
        maxOutputTokens: r.max_output_tokens ?? null,
        instructions: r.instructions ?? null,
        text: r.text ?? null,
        temperature: r.temperature ?? null,
        topP: r.top_p ?? null,
        metadata: r.metadata ?? null,
        tools: r.tools ?? [],
        toolChoice: r.tool_choice ?? null,
        previousResponseId: previousId,
        store,
        keep: store
          ? (response, text) => responses!.put({ response, conversation: [...turn, { role: 'assistant', content: text }], inputItems: inputItemsOf(r) })
          : undefined,
      });
  }
  const { prompt } = asked;
  const model = asked.model ?? catalog.models[0];
  const lora = resolveModel(model, catalog);
  const modelKey = lora ?? catalog.models[0];

  // vLLM's context checks, with its wording; a prompt past the context length was counted only that far.
  const limit = catalog.maxModelLen;
  const room = limit - prompt.count;
  if (room < 1) {
    const has = prompt.tokens.length === 0 && prompt.count > limit ? `more than ${limit}` : String(prompt.count);
    throw invalidRequest(
      `This model's maximum context length is ${limit} tokens. However, your request has ${has} input tokens. Please reduce the length of the input messages.`,
      'input_tokens',
    );
  }
  const maxTokens = asked.clampMaxTokens && asked.maxTokens != null ? Math.min(asked.maxTokens, room) : asked.maxTokens;
  if (maxTokens != null && maxTokens > room) {
    throw invalidRequest(
      `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ${limit} tokens ` +
        `and your request has ${prompt.count} input tokens (${maxTokens} > ${limit} - ${prompt.count}).`,
      'max_tokens',
    );
  }
  const cap = maxTokens ?? room;
  // vLLM's sampling-parameter and prompt checks, with its wording.
  if (asked.minTokens != null && asked.minTokens > cap) {
    throw invalidRequest(`min_tokens must be less than or equal to max_tokens=${cap}, got ${asked.minTokens}.`);
  }
  if (prompt.count === 0) throw invalidRequest('The decoder prompt cannot be empty');
  const textSeed = hashInts(prompt.tokens, 0, prompt.tokens.length, hashString(`${catalog.seed}:${asked.seed ?? ''}`));
  // Like a real model, the simulated one ends its answer at a natural length (end of sequence), max_tokens being only
  // a cap; `ignore_eos` (vLLM's, what benchmarks use for exact lengths) runs it to max_tokens.
  const choices = buildChoices({
    seed: textSeed,
    count: asked.n,
    cap,
    maxOutputTokens: catalog.maxOutputTokens,
    ignoreEos: asked.ignoreEos === true,
    minTokens: asked.minTokens ?? 0,
    stop: asked.stop,
    output: asked.output,
  });
  const format = makeFormat({
    model,
    includeUsage: asked.includeUsage,
    choices,
    logprobs: asked.logprobs === null ? null : { top: asked.logprobs, seed: textSeed },
  });
  return {
    model,
    lora,
    prompt,
    blockHashes: promptBlockHashes(modelKey, prompt.tokens),
    choiceTokens: choices.map((c) => c.pieces.length),
    completionTokens: choices.reduce((sum, c) => sum + c.pieces.length, 0),
    finishReason: choices[0].finishReason,
    stream: asked.stream,
    format,
    textSeed,
  };
}

/** What chat and Responses requests ask of tools, whichever shape they name them in. */
interface ToolsAsked {
  tools: ToolSpec[];
  choice: 'none' | 'auto' | 'required' | { name: string } | null | undefined;
}

/**
 * The tool call an answer is, if any: one when tools are offered and tool_choice asks for one ('required', a named
 * function, or 'auto' while the last message is not a tool's result: the simulated model calls a tool, then answers
 * from its result).
 */
function toolCallOutput({ tools, choice }: ToolsAsked, last: ChatMessage | undefined): OutputKind | undefined {
  const asked = choice ?? (tools.length > 0 ? 'auto' : 'none');
  if (asked !== 'none' && tools.length === 0) throw invalidRequest('"tool_choice": tools must be given when tool_choice is not "none"');
  if (typeof asked === 'object') {
    const tool = tools.find((t) => t.name === asked.name);
    if (!tool) throw invalidRequest(`"tool_choice": no tool named "${asked.name}" in "tools"`);
    // OpenAI ends a forced call with "stop".
    return { kind: 'tool', tool, finishReason: 'stop' };
  }
  if (asked === 'required' || (asked === 'auto' && last?.role !== 'tool')) {
    return { kind: 'tool', tool: tools[hashString(JSON.stringify(last?.content ?? null)) % tools.length], finishReason: 'tool_calls' };
  }
  return undefined;
}

/** What a chat answer is: a tool call (toolCallOutput), JSON for response_format, text otherwise. */
function chatOutput(r: ChatRequest): OutputKind {
  const tools = (r.tools ?? []).map((t) => ({ name: t.function.name, parameters: t.function.parameters }));
  const choice = typeof r.tool_choice === 'object' && r.tool_choice !== null ? { name: r.tool_choice.function.name } : r.tool_choice;
  const call = toolCallOutput({ tools, choice }, r.messages[r.messages.length - 1]);
  if (call) return call;
  const format = r.response_format;
  if (format?.type === 'json_object') return { kind: 'json' };
  if (format?.type === 'json_schema') return { kind: 'json', schema: format.json_schema.schema };
  return { kind: 'text' };
}

/** What a Responses answer is: a function call (toolCallOutput), JSON for text.format, text otherwise. */
function responsesOutput(r: ResponsesRequest, messages: ChatMessage[]): OutputKind {
  const tools = (r.tools ?? []).map((t) => ({ name: t.name, parameters: t.parameters }));
  const choice = typeof r.tool_choice === 'object' && r.tool_choice !== null ? { name: r.tool_choice.name } : r.tool_choice;
  const call = toolCallOutput({ tools, choice }, messages[messages.length - 1]);
  if (call) return call;
  const format = r.text?.format;
  if (format?.type === 'json_object') return { kind: 'json' };
  if (format?.type === 'json_schema') return { kind: 'json', schema: format.schema };
  return { kind: 'text' };
}

/** The prompt as echo repeats it: its text and its tokens one by one. */
function echoOf(source: string | number[], prompt: Prompt): { text: string; tokens: string[] } {
  const tokens = prompt.tokens.map((t) => decodeTokens([t]));
  return { text: typeof source === 'string' ? source : tokens.join(''), tokens };
}

export function embeddingJob(body: unknown, catalog: Catalog): EmbeddingJob {
  const r = parse(embeddingsRequest, body);
  const model = r.model ?? catalog.models[0];
  const lora = resolveModel(model, catalog);
  const raw = r.input;
  const inputs: (string | number[])[] =
    typeof raw === 'string' ? [raw] : raw.length > 0 && typeof raw[0] === 'number' ? [raw as number[]] : (raw as (string | number[])[]);
  if (inputs.length === 0) throw invalidRequest('"input" must not be empty');
  const texts: string[] = [];
  let promptTokens = 0;
  const limit = catalog.maxModelLen;
  for (const input of inputs) {
    const { text, count } = tokenize(() => embeddingInput(input, limit));
    if (count > limit) {
      throw invalidRequest(
        `This model's maximum context length is ${limit} tokens. However, you requested more than ${limit} tokens in the input for embedding generation. Please reduce the length of the input.`,
        'input_tokens',
      );
    }
    texts.push(text);
    promptTokens += count;
  }
  return {
    model,
    lora,
    texts,
    promptTokens,
    base64: r.encoding_format === 'base64',
    dimensions: r.dimensions ?? undefined,
  };
}

/** The adapter a model name refers to (undefined for a base model); 404 for names this server does not serve. */
function resolveModel(name: string, catalog: Catalog): string | undefined {
  if (catalog.models.includes(name)) return undefined;
  if (catalog.loras.includes(name)) return name;
  throw new HttpError(404, `The model \`${name}\` does not exist.`, { param: 'model' });
}

/** vLLM's answer for a stored response it does not hold. */
export function responseNotFound(id: string): HttpError {
  return new HttpError(404, `Response with id '${id}' not found.`);
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // The schemas' own checks (vLLM's sentences) name their field already.
  const path = issue.path.length > 0 && issue.code !== 'custom' ? `"${issue.path.join('.')}": ` : '';
  const param = issue.path.length > 0 ? String(issue.path[0]) : null;
  throw invalidRequest(`${path}${issue.message}`, param);
}

function tokenize<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PromptError) throw invalidRequest(err.message);
    throw err;
  }
}

/** The request's input as input_items lists it: a string input is one user message. */
function inputItemsOf(r: ResponsesRequest): unknown[] {
  if (typeof r.input !== 'string') return r.input;
  return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: r.input }] }];
}

function singlePrompt(prompt: string | string[] | number[] | number[][]): string | number[] {
  if (typeof prompt === 'string') return prompt;
  if (prompt.length > 0 && typeof prompt[0] === 'number') return prompt as number[];
  if (prompt.length !== 1) throw invalidRequest('"prompt": the simulator takes one prompt per request');
  return prompt[0] as string | number[];
}

/**
 * Responses API input as chat messages (instructions aside): the input items, an earlier function call as the
 * assistant's turn and its result as the tool's, as chat carries them.
 */
function responsesInput(r: ResponsesRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (typeof r.input === 'string') messages.push({ role: 'user', content: r.input });
  else {
    for (const item of r.input) {
      if (item.type === 'function_call') messages.push({ role: 'assistant', content: item.arguments ?? null });
      else if (item.type === 'function_call_output') messages.push({ role: 'tool', content: item.output ?? null });
      else messages.push({ role: item.role ?? 'user', content: item.content ?? null });
    }
  }
  return messages;
}
