// Request bodies the simulator accepts on its OpenAI endpoints; fields it does not use pass unchecked.
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const tokenIds = z.array(z.number().int().nonnegative());

const generation = {
  model: z.string().min(1),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).loose().nullish(),
  /** Mixed into the text seed, so the same prompt with another seed reads differently. */
  seed: z.number().int().nullish(),
  /** vLLM's sampling extras: generate to max_tokens regardless of end-of-sequence, or at least this many tokens. */
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.number().int().min(0).nullish(),
};

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
  })
  .loose();

export const completionRequest = z
  .object({
    ...generation,
    prompt: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]),
    max_tokens: positiveInt.nullish(),
  })
  .loose();

const responseInputItem = z
  .object({
    role: z.string().optional(),
    content: z.union([z.string(), z.array(contentPart)]).nullish(),
  })
  .loose();

export const responsesRequest = z
  .object({
    ...generation,
    input: z.union([z.string(), z.array(responseInputItem)]),
    instructions: z.string().nullish(),
    max_output_tokens: positiveInt.nullish(),
  })
  .loose();

export const embeddingsRequest = z
  .object({
    model: z.string().min(1),
    input: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]),
    encoding_format: z.enum(['float', 'base64']).nullish(),
    dimensions: z.number().int().min(1).max(4096).nullish(),
  })
  .loose();

export type ChatRequest = z.infer<typeof chatRequest>;
export type CompletionRequest = z.infer<typeof completionRequest>;
export type ResponsesRequest = z.infer<typeof responsesRequest>;
export type EmbeddingsRequest = z.infer<typeof embeddingsRequest>;
