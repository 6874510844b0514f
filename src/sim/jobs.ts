// Turns OpenAI request bodies into simulator work: which model or adapter, the prompt, how many tokens to generate.
import type { z } from 'zod';
import type { ChatMessage } from '../lib/tokenizer.js';
import { hashInts, hashString } from './hash.js';
import { HttpError, invalidRequest } from './http-io.js';
import { promptBlockHashes } from './kv-cache.js';
import {
  chatFormat,
  completionFormat,
  responsesFormat,
  type FinishReason,
  type GenerationFormat,
} from './openai-format.js';
import {
  chatRequest,
  completionRequest,
  embeddingsRequest,
  responsesRequest,
  type ResponsesRequest,
} from './openai-schemas.js';
import { PromptError, chatPrompt, embeddingInput, textPrompt, type Prompt } from './prompt.js';
import { drawOutputLength } from './text.js';

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
  outputTokens: number;
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

export function generationJob(endpoint: GenerationEndpoint, body: unknown, catalog: Catalog): GenerationJob {
  let model: string;
  let prompt: Prompt;
  let maxTokens: number | null | undefined;
  let stream: boolean;
  let includeUsage = false;
  let seed: number | null | undefined;
  let ignoreEos: boolean | null | undefined;
  let minTokens: number | null | undefined;
  if (endpoint === 'chat') {
    const r = parse(chatRequest, body);
    model = r.model;
    stream = r.stream === true;
    prompt = tokenize(() => chatPrompt(r.messages));
    maxTokens = r.max_completion_tokens ?? r.max_tokens;
    includeUsage = r.stream_options?.include_usage === true;
    seed = r.seed;
    ({ ignore_eos: ignoreEos, min_tokens: minTokens } = r);
  } else if (endpoint === 'completions') {
    const r = parse(completionRequest, body);
    model = r.model;
    stream = r.stream === true;
    prompt = tokenize(() => textPrompt(singlePrompt(r.prompt)));
    maxTokens = r.max_tokens;
    includeUsage = r.stream_options?.include_usage === true;
    seed = r.seed;
    ({ ignore_eos: ignoreEos, min_tokens: minTokens } = r);
  } else {
    const r = parse(responsesRequest, body);
    model = r.model;
    stream = r.stream === true;
    prompt = tokenize(() => chatPrompt(responsesMessages(r)));
    maxTokens = r.max_output_tokens;
    seed = r.seed;
    ({ ignore_eos: ignoreEos, min_tokens: minTokens } = r);
  }
  const lora = resolveModel(model, catalog);
  const modelKey = lora ?? catalog.models[0];

  const room = catalog.maxModelLen - prompt.count;
  if (room < 1 || (maxTokens != null && maxTokens > room)) {
    throw invalidRequest(
      `This model's maximum context length is ${catalog.maxModelLen} tokens. However, you requested ` +
        `${prompt.count + (maxTokens ?? 1)} tokens (${prompt.count} in the prompt, ${maxTokens ?? 1} in the completion).`,
      'context_length_exceeded',
    );
  }
  const textSeed = hashInts(prompt.tokens, 0, prompt.tokens.length, hashString(`${catalog.seed}:${seed ?? ''}`));
  let outputTokens: number;
  let finishReason: FinishReason;
  // Like a real model, the simulated one ends its answer at a natural length (end of sequence), max_tokens being only
  // a cap; `ignore_eos` (vLLM's, what benchmarks use for exact lengths) runs it to max_tokens.
  const cap = maxTokens ?? room;
  if (ignoreEos === true) {
    outputTokens = cap;
    finishReason = 'length';
  } else {
    const natural = Math.max(drawOutputLength(textSeed, catalog.maxOutputTokens), minTokens ?? 0);
    outputTokens = Math.min(natural, cap);
    finishReason = natural > cap ? 'length' : 'stop';
  }
  const ctx = { model, includeUsage, finishReason };
  const format =
    endpoint === 'chat'
      ? chatFormat(ctx)
      : endpoint === 'completions'
        ? completionFormat(ctx)
        : responsesFormat({ ...ctx, maxOutputTokens: maxTokens ?? null });
  return {
    model,
    lora,
    prompt,
    blockHashes: promptBlockHashes(modelKey, prompt.tokens),
    outputTokens,
    finishReason,
    stream,
    format,
    textSeed,
  };
}

export function embeddingJob(body: unknown, catalog: Catalog): EmbeddingJob {
  const r = parse(embeddingsRequest, body);
  const lora = resolveModel(r.model, catalog);
  const raw = r.input;
  const inputs: (string | number[])[] =
    typeof raw === 'string' ? [raw] : raw.length > 0 && typeof raw[0] === 'number' ? [raw as number[]] : (raw as (string | number[])[]);
  if (inputs.length === 0) throw invalidRequest('"input" must not be empty');
  const texts: string[] = [];
  let promptTokens = 0;
  for (const input of inputs) {
    const { text, count } = tokenize(() => embeddingInput(input));
    if (count > catalog.maxModelLen) {
      throw invalidRequest(`An input has ${count} tokens; the maximum is ${catalog.maxModelLen}`, 'context_length_exceeded');
    }
    texts.push(text);
    promptTokens += count;
  }
  return {
    model: r.model,
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
  throw new HttpError(404, 'invalid_request_error', 'model_not_found', `The model \`${name}\` does not exist.`);
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.length > 0 ? `"${issue.path.join('.')}": ` : '';
  throw invalidRequest(`${path}${issue.message}`);
}

function tokenize<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PromptError) throw invalidRequest(err.message);
    throw err;
  }
}

function singlePrompt(prompt: string | string[] | number[] | number[][]): string | number[] {
  if (typeof prompt === 'string') return prompt;
  if (prompt.length > 0 && typeof prompt[0] === 'number') return prompt as number[];
  if (prompt.length !== 1) throw invalidRequest('"prompt": the simulator takes one prompt per request');
  return prompt[0] as string | number[];
}

/** Responses API input as chat messages: instructions first (as a system message), then the input items. */
function responsesMessages(r: ResponsesRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (r.instructions) messages.push({ role: 'system', content: r.instructions });
  if (typeof r.input === 'string') messages.push({ role: 'user', content: r.input });
  else for (const item of r.input) messages.push({ role: item.role ?? 'user', content: item.content ?? null });
  return messages;
}
