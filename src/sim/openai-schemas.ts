// Request bodies the simulator accepts on its OpenAI endpoints; fields it does not use pass unchecked, apart from
// the common sampling fields, refused as vLLM refuses them so that a client's bad values do not pass unnoticed.
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const tokenIds = z.array(z.number().int().nonnegative());

/** Left out, vLLM serves the base model. */
const model = z.string().min(1).nullish();

/** A number within vLLM's bounds for `name` (SamplingParams' checks), refused with its sentence. */
function bounded(name: string, lo: number, hi: number, openBelow = false) {
  return z
    .number()
    .refine((v) => (openBelow ? v > lo : v >= lo) && v <= hi, { error: (issue) => `${name} must be in ${openBelow ? '(' : '['}${lo}, ${hi}], got ${String(issue.input)}.` })
    .nullish();
}

const temperature = bounded('temperature', 0, 2);
const topP = bounded('top_p', 0, 1, true);

/** The sampling fields chat, completions and the Responses API share; the simulator's text does not depend on them. */
const sampling = {
  temperature,
  top_p: topP,
  presence_penalty: bounded('presence_penalty', -2, 2),
  frequency_penalty: bounded('frequency_penalty', -2, 2),
  logit_bias: z
    .record(z.string(), z.number())
    .refine((bias) => Object.keys(bias).every((k) => /^-?\d+$/.test(k.trim())), 'logit_bias contains key(s) that cannot be converted to integer token IDs')
    .nullish(),
};

const generation = {
  model,
  ...sampling,
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).loose().nullish(),
  /** Mixed into the text seed, so the same prompt with another seed reads differently. */
  // vLLM takes any 64-bit integer (a client's random int64), not only those a double holds exactly.
  seed: z.number().min(-(2 ** 63)).max(2 ** 63).refine(Number.isInteger, 'seed must be an integer').nullish(),
  /** vLLM's sampling extras: generate to max_tokens regardless of end-of-sequence, or at least this many tokens. */
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.number().int().min(0).nullish(),
  /** Choices to generate (chat and completions). */
  n: z.number().int().min(1).max(128).nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
};

const functionTool = z
  .object({ type: z.literal('function'), function: z.object({ name: z.string().min(1), parameters: z.unknown().optional() }).loose() })
  .loose();

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }).loose() }).loose(),
]);

/** The Responses API's function tool and forced choice: name and parameters beside `type`, not under `function`. */
const responsesFunctionTool = z.object({ type: z.literal('function'), name: z.string().min(1), parameters: z.unknown().optional() }).loose();

const responsesToolChoice = z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), name: z.string() }).loose()]);

const responseFormat = z.union([
  z.object({ type: z.literal('text') }).loose(),
  z.object({ type: z.literal('json_object') }).loose(),
  z.object({ type: z.literal('json_schema'), json_schema: z.object({ name: z.string().optional(), schema: z.unknown().optional() }).loose() }).loose(),
]);

const contentPart = z.object({ type: z.string().optional(), text: z.string().optional() }).loose();

const chatMessage = z
  .object({
    role: z.string(),
    content: z.union([z.string(), z.array(contentPart)]).nullish(),
  })
  .loose()
  .transform((m) => ({ role: m.role, content: m.content ?? null }));

export const chatRequest = z
  .object({
    ...generation,
    messages: z.array(chatMessage).min(1),
    max_tokens: positiveInt.nullish(),
    max_completion_tokens: positiveInt.nullish(),
    tools: z.array(functionTool).nullish(),
    tool_choice: toolChoice.nullish(),
    response_format: responseFormat.nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
  })
  .loose();

export const completionRequest = z
  .object({
    ...generation,
    prompt: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]),
    max_tokens: positiveInt.nullish(),
    echo: z.boolean().nullish(),
    logprobs: z.number().int().min(0).max(20).nullish(),
    suffix: z.string().nullish(),
  })
  .loose();

/** A message, or an earlier turn's function call (`type: 'function_call'`) or its result (`'function_call_output'`). */
const responseInputItem = z
  .object({
    type: z.string().optional(),
    role: z.string().optional(),
    content: z.union([z.string(), z.array(contentPart)]).nullish(),
    arguments: z.string().optional(),
    output: z.union([z.string(), z.array(contentPart)]).optional(),
  })
  .loose();

export const responsesRequest = z
  .object({
    ...generation,
    input: z.union([z.string(), z.array(responseInputItem)]),
    instructions: z.string().nullish(),
    max_output_tokens: positiveInt.nullish(),
    text: z
      .object({
        format: z
          .object({ type: z.enum(['text', 'json_object', 'json_schema']), schema: z.unknown().optional() })
          .loose()
          .optional(),
      })
      .loose()
      .nullish(),
    metadata: z.record(z.string(), z.string()).nullish(),
    tools: z.array(responsesFunctionTool).nullish(),
    tool_choice: responsesToolChoice.nullish(),
    previous_response_id: z.string().nullish(),
    store: z.boolean().nullish(),
  })
  .loose();

export const embeddingsRequest = z
  .object({
    model,
    input: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]),
    encoding_format: z.enum(['float', 'base64']).nullish(),
    dimensions: z.number().int().min(1).max(4096).nullish(),
  })
  .loose();

export type ChatRequest = z.infer<typeof chatRequest>;
export type ResponsesRequest = z.infer<typeof responsesRequest>;
