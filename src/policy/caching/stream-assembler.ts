// Rebuilding the whole answer from a streamed one (chat.completion.chunk or text_completion events), so a cache stores
// one form and can answer both streamed and non-streamed requests from it.
import type { ResponseFlow } from '../../gateway/hooks.js';
import type { ApimState } from '../types.js';
import type { CacheStats } from './cache-stats.js';
import { replayableIn, type CacheScope } from './cache-scope.js';

interface ToolCall {
  id?: string;
  type?: string;
  function: { name: string; arguments: string };
}

interface Choice {
  role?: string;
  text: string;
  hasText: boolean;
  refusal?: string;
  toolCalls: ToolCall[];
  finishReason: string | null;
  /** Each chunk's logprobs arrays, concatenated field by field (chat: content, refusal; completions: tokens, ...). */
  logprobs?: Record<string, unknown[]>;
  /** Other text a delta carries, concatenated by field: a reasoning server's `reasoning_content` (or `reasoning`). */
  more: Record<string, string>;
}

/** The delta fields read one by one; any other string field is text to concatenate (Choice.more). */
const KNOWN_DELTA = new Set(['role', 'content', 'refusal', 'tool_calls']);

interface Chunk {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  system_fingerprint?: string;
  error?: unknown;
  usage?: unknown;
  choices?: {
    index?: number;
    text?: string;
    finish_reason?: string | null;
    logprobs?: Record<string, unknown> | null;
    delta?: { role?: string; content?: string | null; refusal?: string | null; tool_calls?: { index?: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }[] } & Record<string, unknown>;
  }[];
}

/**
 * Feed it every event's `data:` payload; `result()` is the equivalent non-streamed answer, or undefined when the stream
 * was not a complete, error-free completion stream, or its answer outgrew `maxBytes` (then nothing should be cached).
 */
export class StreamAssembler {
  readonly #choices = new Map<number, Choice>();
  readonly #maxBytes: number;
  #head: Chunk | undefined;
  #usage: unknown;
  #done = false;
  #broken = false;
  /**
   * What the choices hold so far, in characters of their text and their logprobs' JSON: never more than the answer's
   * bytes, so a stream is let go only once its answer cannot be stored. The events' own lengths are no measure: each
   * repeats id, model and created, and a 6,000-token answer of 30 KB streams as more than 1 MiB.
   */
  #bytes = 0;

  /** `maxBytes`: the largest answer worth assembling (a cache entry's limit); past it, what is held is let go. */
  constructor(maxBytes = Infinity) {
    this.#maxBytes = maxBytes;
  }

  push(data: string): void {
    if (this.#broken) return;
    if (data === '[DONE]') {
      this.#done = true;
      return;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch {
      // UNREAD_EVENT among them: an event too long to read is missing from what was gathered.
      this.#broken = true;
      return;
    }
    if (chunk.error || (chunk.object !== 'chat.completion.chunk' && chunk.object !== 'text_completion') || !Array.isArray(chunk.choices)) {
      this.#broken = true;
      return;
    }
    this.#head ??= chunk;
    if (chunk.usage) this.#usage = chunk.usage;
    for (const c of chunk.choices) this.#choice(c);
    // A client asking for a long answer with top_logprobs: 20 had 200 MiB assembled per stream, then thrown away.
    if (this.#bytes > this.#maxBytes) this.#giveUp();
  }

  #giveUp(): void {
    this.#broken = true;
    this.#choices.clear();
    this.#head = undefined;
    this.#usage = undefined;
  }

  result(): Buffer | undefined {
    const head = this.#head;
    if (this.#broken || !head || this.#choices.size === 0) return undefined;
    const choices = [...this.#choices.entries()].sort((a, b) => a[0] - b[0]);
    if (!this.#done && choices.some(([, c]) => c.finishReason === null)) return undefined;
    const chat = head.object === 'chat.completion.chunk';
    const answer = {
      id: head.id,
      object: chat ? 'chat.completion' : 'text_completion',
      created: head.created,
      model: head.model,
      ...(head.system_fingerprint !== undefined && { system_fingerprint: head.system_fingerprint }),
      choices: choices.map(([index, c]) =>
        chat
          ? {
              index,
              message: {
                role: c.role ?? 'assistant',
                ...c.more,
                content: c.hasText ? c.text : null,
                ...(c.refusal !== undefined && { refusal: c.refusal }),
                ...(c.toolCalls.length > 0 && { tool_calls: c.toolCalls.filter(Boolean) }),
              },
              logprobs: c.logprobs ?? null,
              finish_reason: c.finishReason,
            }
          : { index, text: c.text, logprobs: c.logprobs ?? null, finish_reason: c.finishReason },
      ),
      ...(this.#usage !== undefined && { usage: this.#usage }),
    };
    return Buffer.from(JSON.stringify(answer));
  }

  #choice(c: NonNullable<Chunk['choices']>[number]): void {
    const index = c.index ?? 0;
    let choice = this.#choices.get(index);
    if (!choice) this.#choices.set(index, (choice = { text: '', hasText: false, toolCalls: [], finishReason: null, more: {} }));
    if (typeof c.text === 'string') {
      choice.text += c.text;
      choice.hasText = true;
      this.#bytes += c.text.length;
    }
    const d = c.delta;
    if (d) {
      if (d.role) choice.role = d.role;
      if (typeof d.content === 'string') {
        choice.text += d.content;
        choice.hasText = true;
      }
      if (typeof d.refusal === 'string') choice.refusal = (choice.refusal ?? '') + d.refusal;
      for (const field in d) {
        const v = d[field];
        if (typeof v !== 'string' || field === 'role') continue;
        this.#bytes += v.length;
        if (!KNOWN_DELTA.has(field)) choice.more[field] = (choice.more[field] ?? '') + v;
      }
      for (const t of d.tool_calls ?? []) {
        const call = (choice.toolCalls[t.index ?? 0] ??= { function: { name: '', arguments: '' } });
        if (t.id) call.id = t.id;
        if (t.type) call.type = t.type;
        if (t.function?.name) call.function.name += t.function.name;
        if (t.function?.arguments) {
          call.function.arguments += t.function.arguments;
          this.#bytes += t.function.arguments.length;
        }
      }
    }
    if (c.logprobs && typeof c.logprobs === 'object') {
      const into = (choice.logprobs ??= {});
      for (const [field, value] of Object.entries(c.logprobs)) {
        if (!Array.isArray(value)) continue;
        (into[field] ??= []).push(...(value as unknown[]));
        this.#bytes += JSON.stringify(value).length;
      }
    }
    if (c.finish_reason) choice.finishReason = c.finish_reason;
  }
}

/**
 * Whether `body` is a JSON object without an `error` (a Responses API answer says `"error": null`: taken for an error,
 * no Responses answer was ever stored): what a cache may store and replay.
 */
function isAnswer(body: Buffer): boolean {
  // Parsed whole: a 200 whose JSON is cut or broken (`{"id": "x", oops`) was stored when only its first byte was
  // looked at, and replayed to the whole tenant for the TTL. What is parsed is at most an entry's size (captureAnswer).
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && (parsed as { error?: unknown }).error == null;
  } catch {
    return false;
  }
}

/** A cache that stores answers, as captureAnswer sees it. */
export interface AnswerCache {
  /** The largest answer an entry holds. */
  maxEntryBytes: number;
  /** Whose requests its entries answer. */
  cacheScope: CacheScope;
  stats: CacheStats;
}

/**
 * The response flow of a cache that stores answers: a JSON answer is handed over whole, a stream once assembled
 * into its non-streamed equivalent; nothing when it was not a complete answer, or is larger than an entry, or what
 * the response policies made of it was for requests other than those of the cache's scope (`replayableIn`: counted
 * as `notReplayable`). Nothing is changed.
 */
export function captureAnswer(stream: boolean, cache: AnswerCache, state: ApimState, store: (answer: Buffer) => void): ResponseFlow {
  const maxBytes = cache.maxEntryBytes;
  // Read at the end: a policy listed after the cache says so when its own flow starts, after this one.
  const done = (answer: Buffer | undefined) => {
    if (!answer) return;
    if (replayableIn(cache.cacheScope, state)) store(answer);
    else cache.stats.notReplayable++;
  };
  if (!stream) {
    // Only a JSON answer is one: a cache replays what it stores as application/json, and an error is no answer
    // (some servers send one with a 200).
    let json = false;
    return {
      observes: true,
      // A longer answer goes to the client without a copy kept for a cache that could not store it.
      observeLimit: maxBytes,
      headers(_status, out) {
        json = String(out['content-type'] ?? '').includes('json');
      },
      body(body) {
        done(json && body.length <= maxBytes && isAnswer(body) ? body : undefined);
        return body;
      },
    };
  }
  const assembler = new StreamAssembler(maxBytes);
  return {
    observes: true,
    event(data) {
      assembler.push(data);
      return data;
    },
    end() {
      const answer = assembler.result();
      done(answer && answer.length <= maxBytes ? answer : undefined);
    },
  };
}
