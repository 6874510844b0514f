// Validation of the OpenAI request fields tollgate reads; every other field passes through untouched.
import { z } from 'zod';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../lib/json-depth.js';
import { jsonText } from '../lib/json-text.js';
import { gatewayError } from './errors.js';

export type Operation = 'chat.completions' | 'completions' | 'embeddings' | 'responses';

export const OPERATION_PATHS: Record<string, Operation> = {
  '/v1/chat/completions': 'chat.completions',
  '/v1/completions': 'completions',
  '/v1/embeddings': 'embeddings',
  '/v1/responses': 'responses',
};

const positiveInt = z.number().int().positive();
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const message = z.looseObject({
  role: z.string(),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
});

// An optional field may also be sent as null (OpenAI and vLLM take it as absent; the Python SDK sends None so).
const common = {
  model: z.string({ error: 'model must be a string' }).min(1, 'model must not be empty'),
  stream: z.boolean().nullish(),
  max_tokens: positiveInt.nullish(),
  max_completion_tokens: positiveInt.nullish(),
  // Counted by token quotas (each choice may produce the whole cap): "8" as a string counted as one while the
  // server, coercing it, made eight.
  n: positiveInt.nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
};

const SCHEMAS: Record<Operation, z.ZodType> = {
  'chat.completions': z.looseObject({ ...common, messages: z.array(message).min(1, 'messages must not be empty') }),
  // vLLM also takes a completion from `prompt_embeds` alone, and embeddings of chat `messages`: such a request has no
  // prompt or input for tollgate to read, and is passed on for the model server to judge.
  completions: z.looseObject({
    ...common,
    prompt: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))]).nullish(),
    best_of: positiveInt.nullish(),
  }),
  embeddings: z.looseObject({
    model: common.model,
    input: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))]).optional(),
    messages: z.array(message).optional(),
  }),
  responses: z.looseObject({
    ...common,
    max_output_tokens: positiveInt.nullish(),
    input: z.union([z.string(), z.array(z.unknown())]).optional(),
  }),
};

export type OpenAIBody = Record<string, unknown> & {
  model: string;
  stream?: boolean | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  max_output_tokens?: number | null;
  messages?: { role: string; content: string | { type: string; text?: string }[] | null }[];
  prompt?: unknown;
  input?: unknown;
  stream_options?: { include_usage?: boolean | null } | null;
};

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

/** Parses and validates a request body; throws a GatewayError (400) naming the field. */
export function parseOpenAIBody(raw: Buffer, operation: Operation): OpenAIBody {
  let value: unknown;
  try {
    value = JSON.parse(jsonText(raw));
  } catch (err) {
    throw gatewayError('TG_ERR_INVALID_JSON', `The request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw gatewayError('TG_ERR_INVALID_REQUEST', 'The request body must be a JSON object');
  }
  if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) {
    throw gatewayError('TG_ERR_INVALID_REQUEST', `The request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
  }
  if (!('model' in value) || (value as { model: unknown }).model === undefined) throw gatewayError('TG_ERR_MISSING_MODEL', undefined, undefined, 'model');
  const parsed = SCHEMAS[operation].safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issuePath(issue.path);
    throw gatewayError('TG_ERR_INVALID_REQUEST', `Invalid request: ${path}: ${issue.message}`, undefined, path);
  }
  return value as OpenAIBody;
}
