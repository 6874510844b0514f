// What each of a request's choices says, decided before the first decode step: plain text (cut at a stop string or
// the cap), JSON for response_format, or a tool call whose arguments follow the tool's parameter schema. One piece per
// decode step, so usage, streaming and logprobs all count the same tokens.
import { decodeTokens, encodeText } from '../lib/tokenizer.js';
import { hashInts, hashString, seededRandom } from './hash.js';
import { drawOutputLength, textSource, VOCABULARY } from './text.js';

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface ToolCall {
  /** Hex, fixed by the seed and the choice; each format prefixes it its way (`chatcmpl-tool-`, `call_`, `fc_`). */
  id: string;
  name: string;
}

export interface Choice {
  /** The text each decode step adds (the arguments of a tool call); a step that only consumed a stop string adds ''. */
  pieces: string[];
  finishReason: FinishReason;
  /** Set when the choice calls a tool: `pieces` are then its arguments. */
  toolCall?: ToolCall;
}

/** A function tool as chat (`{type, function: {name, parameters}}`) and Responses (`{type, name, parameters}`) name it. */
export interface ToolSpec {
  name: string;
  parameters?: unknown;
}

export type OutputKind =
  | { kind: 'text' }
  | { kind: 'json'; schema?: unknown }
  | { kind: 'tool'; tool: ToolSpec; finishReason: FinishReason };

export interface ChoiceSpec {
  /** The seed of choice 0; choice i reads differently. */
  seed: number;
  count: number;
  cap: number;
  maxOutputTokens: number;
  ignoreEos: boolean;
  minTokens: number;
  stop: string[];
  output: OutputKind;
}

export function buildChoices(spec: ChoiceSpec): Choice[] {
  const choices: Choice[] = [];
  for (let i = 0; i < spec.count; i++) {
    const seed = i === 0 ? spec.seed : hashInts([i], 0, 1, spec.seed);
    choices.push(spec.output.kind === 'text' ? textChoice(spec, seed) : structuredChoice(spec, seed, i));
  }
  return choices;
}

function textChoice(spec: ChoiceSpec, seed: number): Choice {
  let length: number;
  let finishReason: FinishReason;
  if (spec.ignoreEos) {
    length = spec.cap;
    finishReason = 'length';
  } else {
    const natural = Math.max(drawOutputLength(seed, spec.maxOutputTokens), spec.minTokens);
    length = Math.min(natural, spec.cap);
    finishReason = natural > spec.cap ? 'length' : 'stop';
  }
  const next = textSource(seed);
  const pieces: string[] = [];
  let text = '';
  for (let i = 0; i < length; i++) {
    const piece = next();
    // A stop string ends the answer without being part of it (vLLM's default, include_stop_str_in_output false).
    const at = spec.stop.length > 0 && i + 1 >= spec.minTokens ? firstStop(text + piece, spec.stop, text.length) : -1;
    if (at !== -1) {
      pieces.push(piece);
      return { pieces: cutAt(pieces, at), finishReason: 'stop' };
    }
    pieces.push(piece);
    text += piece;
  }
  return { pieces, finishReason };
}

/** The pieces with their joined text cut to `length` characters (every step still counts as a token). */
function cutAt(pieces: string[], length: number): string[] {
  let left = length;
  return pieces.map((p) => {
    const kept = p.slice(0, Math.max(0, left));
    left -= p.length;
    return kept;
  });
}

/** Where the first stop string starts in `text`, looking only at matches that end after `from`; -1 for none. */
function firstStop(text: string, stop: string[], from: number): number {
  let best = -1;
  for (const s of stop) {
    if (s === '') continue;
    const at = text.indexOf(s, Math.max(0, from - s.length + 1));
    if (at !== -1 && (best === -1 || at < best)) best = at;
  }
  return best;
}

function structuredChoice(spec: ChoiceSpec, seed: number, index: number): Choice {
  const output = spec.output;
  const rand = seededRandom(seed);
  const words = () => VOCABULARY_WORDS[Math.floor(rand() * VOCABULARY_WORDS.length)];
  let value: unknown;
  // A function declared without parameters takes none: OpenAI calls it with `{}`.
  if (output.kind === 'tool') value = fromSchema(output.tool.parameters ?? { type: 'object' }, rand, words, 0);
  else if (output.kind === 'json' && output.schema !== undefined) value = fromSchema(output.schema, rand, words, 0);
  else value = { answer: sentence(rand, words) };
  const pieces = encodeText(JSON.stringify(value)).map((t) => decodeTokens([t]));
  const toolCall = output.kind === 'tool' ? { id: hashString(`${seed}:${index}`).toString(16), name: output.tool.name } : undefined;
  const natural = output.kind === 'tool' ? output.finishReason : 'stop';
  if (pieces.length > spec.cap) return { pieces: pieces.slice(0, spec.cap), finishReason: 'length', toolCall };
  return { pieces, finishReason: natural, toolCall };
}

const VOCABULARY_WORDS = VOCABULARY.filter((w) => /^ [a-z]+$/.test(w)).map((w) => w.slice(1));

function sentence(rand: () => number, word: () => string): string {
  const n = 2 + Math.floor(rand() * 4);
  return Array.from({ length: n }, word).join(' ');
}

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
};

/** A small value that satisfies the common JSON Schema keywords (type, properties, items, enum, const, anyOf). */
function fromSchema(raw: unknown, rand: () => number, word: () => string, depth: number): unknown {
  const s = (raw && typeof raw === 'object' ? raw : {}) as Schema;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[Math.floor(rand() * s.enum.length)];
  const alternatives = s.anyOf ?? s.oneOf;
  if (Array.isArray(alternatives) && alternatives.length > 0) return fromSchema(alternatives[0], rand, word, depth);
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== 'null') ?? 'null') : (s.type ?? (s.properties ? 'object' : 'string'));
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      if (depth > 8) return out;
      for (const [key, sub] of Object.entries(s.properties ?? {})) out[key] = fromSchema(sub, rand, word, depth + 1);
      return out;
    }
    case 'array':
      return depth > 8 ? [] : [fromSchema(s.items, rand, word, depth + 1)];
    case 'integer':
    case 'number': {
      // An integer's bounds are rounded inwards; with none inside them (maximum below minimum), the minimum it is.
      const whole = type === 'integer';
      const lo = whole ? Math.ceil(s.minimum ?? 0) : (s.minimum ?? 0);
      const hi = Math.max(lo, whole ? Math.floor(s.maximum ?? lo + 100) : (s.maximum ?? lo + 100));
      return lo + Math.floor(rand() * (Math.floor(hi - lo) + 1));
    }
    case 'boolean':
      return rand() < 0.5;
    case 'null':
      return null;
    default:
      return word();
  }
}

/** A token's log probability and its most likely alternatives (the sampled token first), seeded by its position. */
export function tokenLogprobs(seed: number, choice: number, step: number, token: string, top: number): { logprob: number; top: [string, number][] } {
  const rand = seededRandom(hashInts([choice, step], 0, 2, seed ^ 0x6c078965));
  const logprob = -Math.round(rand() * 2_000_000) / 1_000_000;
  const alternatives: [string, number][] = [[token, logprob]];
  let lp = logprob;
  while (alternatives.length < top) {
    const alt = VOCABULARY[Math.floor(rand() * VOCABULARY.length)];
    if (alternatives.some(([t]) => t === alt)) continue;
    lp -= 0.1 + Math.round(rand() * 2_000_000) / 1_000_000;
    alternatives.push([alt, lp]);
  }
  return { logprob, top: alternatives };
}
