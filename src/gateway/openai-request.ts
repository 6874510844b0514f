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
/**
 * The fields vLLM takes in place of `type`, its short media forms (`{"image_url": "<url>"}`, `{"audio_url": {url}}`):
 * a part without a type and without one of these is one vLLM refuses too ("Missing 'type' field").
 */
const TYPELESS_MEDIA = ['image_url', 'audio_url', 'video_url', 'input_audio', 'image_embeds', 'audio_embeds', 'image_pil'];
// tollgate reads only `text`, whatever the type. A bare string among the parts, which vLLM also takes, stays refused:
// tollgate's token counts, sanitizers and cache keys read parts' `text`, and would not see it.
const contentPart = z
  .looseObject({ type: z.string().optional(), text: z.string().optional() })
  .refine((p) => p.type !== undefined || TYPELESS_MEDIA.some((k) => k in p), {
    error: `a content part needs a type, unless it is one of vLLM's short media forms (${TYPELESS_MEDIA.join(', ')})`,
  });
const message = z.looseObject({
  role: z.string(),
  content: z
    .union([z.string(), z.array(contentPart), z.null()], { error: 'must be a string, null or an array of content parts (objects whose type and text are strings)' })
    .optional(),
});

const isText = (v: unknown): boolean => typeof v === 'string';
const isTokenIds = (v: unknown): boolean => Array.isArray(v) && v.every(Number.isFinite);

/** Decided by the first element, so each element is read once and a wrong one costs one issue. */
function isTextOrTokens(v: unknown): boolean {
  if (typeof v === 'string') return true;
  if (!Array.isArray(v)) return false;
  if (v.length === 0) return true;
  const first: unknown = v[0];
  if (typeof first === 'string') return v.every(isText);
  if (typeof first === 'number') return v.every(Number.isFinite);
  return Array.isArray(first) && v.every(isTokenIds);
}

/**
 * A completions prompt or an embeddings input: text, texts, token ids or lists of token ids (vLLM's usual shape).
 * Not a union of z.array schemas: tried in turn, z.array(z.string()) made one issue per element of a token-id array
 * before z.array(z.number()) took it, 1M issues and ~1.5 s of CPU and GC for a 5.8 MB body, before the key was checked.
 */
export const TEXT_OR_TOKENS = z.custom<string | string[] | number[] | number[][]>(isTextOrTokens, {
  error: 'must be a string, an array of strings, an array of token ids or an array of arrays of token ids',
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
  // `messages` is no field of a completions or responses request, but tollgate reads it wherever it is (the picker's
  // prefix, token estimates, prompt policies): checked too, so a malformed one is a 400 naming it, as OpenAI refuses
  // an unknown field, rather than a 500 (a well-formed one is passed on).
  completions: z.looseObject({
    ...common,
    prompt: TEXT_OR_TOKENS.nullish(),
    best_of: positiveInt.nullish(),
    messages: z.array(message).nullish(),
  }),
  embeddings: z.looseObject({
    model: common.model,
    input: TEXT_OR_TOKENS.optional(),
    messages: z.array(message).optional(),
  }),
  responses: z.looseObject({
    ...common,
    max_output_tokens: positiveInt.nullish(),
    input: z.union([z.string(), z.array(z.unknown())]).optional(),
    // Read to route a follow-up to the endpoint that stored the response it continues (stored-responses.ts).
    previous_response_id: z.string().nullish(),
    store: z.boolean().nullish(),
    messages: z.array(message).nullish(),
  }),
};

export type OpenAIBody = Record<string, unknown> & {
  model: string;
  stream?: boolean | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  max_output_tokens?: number | null;
  messages?: { role: string; content: string | { type?: string; text?: string }[] | null }[];
  prompt?: unknown;
  input?: unknown;
  previous_response_id?: string | null;
  store?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
};

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

/**
 * Where a number JSON.parse read as ±Infinity (`1e400`) is: JSON.stringify writes it as null, so a body tollgate
 * serializes again would tell the model server `temperature: null` (its default) or `seed: null` (random) instead.
 * Refused wherever it is, so whether a request passes does not depend on whether a stage changes its body.
 */
function infinityAt(value: object): PropertyKey[] | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = infinityIn(value[i] as unknown);
      if (at) return [i, ...at];
    }
    return undefined;
  }
  // for...in, not Object.keys: no array per object on every request (JSON.parse makes plain objects, no inherited keys).
  for (const key in value) {
    const at = infinityIn((value as Record<string, unknown>)[key]);
    if (at) return [key, ...at];
  }
  return undefined;
}

function infinityIn(v: unknown): PropertyKey[] | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : [];
  return v !== null && typeof v === 'object' ? infinityAt(v) : undefined;
}

/** A request body's JSON as every request's is read (UTF-8, a byte order mark skipped); a 400 `invalid_json` otherwise. */
export function parseJsonBody(raw: Buffer): unknown {
  try {
    return JSON.parse(jsonText(raw));
  } catch (err) {
    throw gatewayError('TG_ERR_INVALID_JSON', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Parses and validates a request body; throws a GatewayError (400) naming the field. */
export function parseOpenAIBody(raw: Buffer, operation: Operation): OpenAIBody {
  const value = parseJsonBody(raw);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw gatewayError('TG_ERR_INVALID_REQUEST', 'The request body must be a JSON object');
  }
  if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) {
    throw gatewayError('TG_ERR_INVALID_REQUEST', `The request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
  }
  if (!('model' in value) || (value as { model: unknown }).model === undefined) throw gatewayError('TG_ERR_MISSING_MODEL', undefined, undefined, 'model');
  const infinite = infinityAt(value);
  if (infinite) {
    const path = issuePath(infinite);
    throw gatewayError('TG_ERR_INVALID_REQUEST', `Invalid request: ${path}: the number is out of range (beyond ±1.8e308)`, undefined, path);
  }
  const parsed = SCHEMAS[operation].safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issuePath(issue.path);
    throw gatewayError('TG_ERR_INVALID_REQUEST', `Invalid request: ${path}: ${issue.message}`, undefined, path);
  }
  return value as OpenAIBody;
}
