// Token usage read from a model server's answer as it passes through: the `usage` object of a JSON body,
// or of the SSE chunk that carries it (stream_options.include_usage), without holding the stream back.
import { StringDecoder } from 'node:string_decoder';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { CompletionText } from './completion-text.js';
import { readableAnswer } from './content-encoding.js';
import { LineEnds, MAX_HELD_EVENT, dataOf, isWholeData } from './sse-rewriter.js';
import { contentTypeOf, isEventStream } from './media-type.js';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** tollgate's estimate for an answer that ended without the server's usage: cut short, or hung up on (estimated-usage.ts). */
  estimated?: true;
}

/** A JSON answer up to this size is held whole (its usage and, with logPrompts, its text); past it only its tail. */
const MAX_JSON_BYTES = 4 * 1024 * 1024;
/** The end of a larger JSON answer, where OpenAI-compatible servers put `usage` (an embeddings batch of 200 vectors). */
const TAIL_BYTES = 64 * 1024;

type RawUsage = {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  input_tokens?: number | null;
  output_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  input_tokens_details?: { cached_tokens?: number | null } | null;
};

/** A count as OpenAI gives one: a non-negative integer. Anything else (a string, -100000, 2.5) is no usage at all. */
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * The usage a model server reported, or undefined when it reported none or one that is not counts: a negative
 * figure wiped a quota's window, strings were joined rather than added, a fraction failed the reconcile. Without an
 * input count (`{}`, nulls, `total_tokens` alone) nothing was reported: taken as 0 tokens, that made the generation
 * free. An absent (or null, as pydantic writes an unset field) output or cached count is 0: embeddings have no output.
 * Counts whose total is past 2^53 are no usage either: the record billed them while the quota's settle refused them.
 */
export function toUsage(u: RawUsage | undefined | null): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const input = u.prompt_tokens ?? u.input_tokens;
  const output = u.completion_tokens ?? u.output_tokens ?? 0;
  const cached = u.prompt_tokens_details?.cached_tokens ?? u.input_tokens_details?.cached_tokens ?? 0;
  if (!isCount(input) || !isCount(output) || !isCount(cached) || !Number.isSafeInteger(input + output)) return undefined;
  return { inputTokens: input, outputTokens: output, cachedTokens: cached };
}

const USAGE_KEY = Buffer.from('"usage"');

const OPEN = 0x7b;
const CLOSE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Where the object the last `"usage"` key names starts and ends, when that key is the top level's, or (`levels` 2)
 * that of an object the top level holds (a Responses event's `response`). One string-aware pass from the key to the
 * end of the text: after the object, what follows must close exactly those levels and end the text (a key inside
 * `metadata`, which a Responses answer repeats after its usage, leaves a `}` to spare). Parsing that tail instead
 * cost 115 ms on the event loop for an answer with vLLM's prompt_logprobs after its usage.
 */
function usageObject(body: Buffer, key: number, levels: 1 | 2): { start: number; end: number } | undefined {
  const skipSpace = (at: number) => {
    while (at < body.length && isSpace(body[at])) at++;
    return at;
  };
  let i = skipSpace(key + USAGE_KEY.length);
  if (body[i] !== COLON) return undefined;
  i = skipSpace(i + 1);
  if (body[i] !== OPEN) return undefined;
  const start = i;
  let end = -1;
  let depth = 0;
  let inString = false;
  for (; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN) depth++;
    else if (c !== CLOSE) continue;
    else if (--depth === 0 && end === -1) end = i;
    else if (depth < 0) {
      // A level above the usage closed: only white space may follow once the outermost one has.
      if (skipSpace(i + 1) === body.length) return { start, end };
      if (depth === -levels) return undefined;
    }
  }
  return undefined;
}

/** The usage the `"usage"` key at `key` names, that object alone parsed, when it sits at `levels` (usageObject). */
function usageNamed(body: Buffer, key: number, levels: 1 | 2): Usage | undefined {
  const at = usageObject(body, key, levels);
  if (!at) return undefined;
  try {
    return toUsage(JSON.parse(body.toString('utf8', at.start, at.end + 1)) as RawUsage);
  } catch {
    return undefined;
  }
}

/**
 * The top-level `usage` of a JSON answer: only that object is parsed when the last `"usage"` key is the top level's
 * (usageObject); otherwise, and for anything unexpected, the whole answer is.
 */
export function usageOfJson(body: Buffer): Usage | undefined {
  const key = body.lastIndexOf(USAGE_KEY);
  if (key === -1) return undefined;
  const named = usageNamed(body, key, 1);
  if (named) return named;
  // Not where it was looked for, or not JSON after all: the whole answer says.
  try {
    return toUsage((JSON.parse(body.toString('utf8')) as { usage?: RawUsage }).usage);
  } catch {
    // Not JSON (an error page): nothing to count.
    return undefined;
  }
}

/** A Responses answer's own `id`, its first key as OpenAI and vLLM write it: read from its start, without parsing it all. */
const LEADING_ID = /^\s*\{\s*"id"\s*:\s*"([A-Za-z0-9_-]{1,128})"/;

/** The id a JSON answer starts with, read from its first 256 bytes; undefined when it starts otherwise. */
const leadingId = (body: Buffer): string | undefined => LEADING_ID.exec(body.toString('latin1', 0, Math.min(body.length, 256)))?.[1];

/** The `id` of a Responses API answer (`"object": "response"`), or undefined. */
export function responseIdOfJson(body: Buffer): string | undefined {
  const head = leadingId(body);
  if (head) return head;
  try {
    const answer = JSON.parse(body.toString('utf8')) as { id?: unknown; object?: unknown };
    return answer.object === 'response' && typeof answer.id === 'string' ? answer.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A Responses event's `response.id`, the response object's first key, read from the start of an event too long to
 * hold: the event's own keys before it are only its type and sequence number (OpenAI's order; vLLM's starts with
 * `response`), so no key of the response object (its `metadata`, which the client writes) can pass for it.
 */
const EVENT_RESPONSE_ID = /^\s*\{\s*(?:"(?:type|sequence_number)"\s*:\s*(?:"[a-z_.]*"|\d+)\s*,\s*)*"response"\s*:\s*\{\s*"id"\s*:\s*"([A-Za-z0-9_-]{1,128})"/;
/** The start of an event too long to hold that is kept: its response's id is near it. */
const EVENT_HEAD_CHARS = 512;

/**
 * The start and the end of the data of an SSE event too long to hold whole (a Responses event's response object
 * echoes the request's `metadata` and `tools`, which nothing bounds): where its response's id and its usage are.
 */
class OversizedEvent {
  readonly head: string;
  #tail: string;

  constructor(data: string) {
    this.head = data.slice(0, EVENT_HEAD_CHARS);
    this.#tail = data.slice(-TAIL_BYTES);
  }

  add(text: string): void {
    this.#tail += text;
    // Cut once it is twice the tail: each character is copied a bounded number of times, however small the chunks.
    if (this.#tail.length > 2 * TAIL_BYTES) this.#tail = this.#tail.slice(-TAIL_BYTES);
  }

  get tail(): string {
    return this.#tail.slice(-TAIL_BYTES);
  }
}

/** Told the id of the Responses API answer passing through (see stored-responses.ts), once it is known. */
export type OnResponseId = (id: string) => void;

type Decode = (body: Buffer, maxOutputLength: number) => Buffer;

/** The content-codings node:zlib reads, each bounded in what it produces (a small answer can decode to gigabytes). */
const gunzip: Decode = (body, maxOutputLength) => gunzipSync(body, { maxOutputLength });
const DECODERS = new Map<string, Decode>([
  ['gzip', gunzip],
  ['x-gzip', gunzip],
  ['deflate', (body, maxOutputLength) => inflateSync(body, { maxOutputLength })],
  ['br', (body, maxOutputLength) => brotliDecompressSync(body, { maxOutputLength })],
]);

/**
 * The scanner for an answer with these headers, or null when its usage cannot be read: a compressed stream, or a
 * coding node:zlib does not read. A compressed JSON answer (a server that ignored accept-encoding: identity) is read
 * from a copy of up to `limit` bytes decoded, to at most `limit` bytes, once it is complete: its quota charge and
 * analytics tokens were the cap and nothing. The client gets its bytes as they came.
 */
export function usageScannerFor(
  headers: Record<string, string | string[] | undefined>,
  text: CompletionText | undefined,
  limit: number,
  onResponseId?: OnResponseId,
): UsageScanner | null {
  const contentType = contentTypeOf(headers['content-type']);
  if (readableAnswer(headers)) return new UsageScanner(contentType, text, undefined, onResponseId);
  const encoding = headers['content-encoding'];
  const decode = typeof encoding === 'string' && !isEventStream(contentType) ? DECODERS.get(encoding.trim().toLowerCase()) : undefined;
  return decode ? new UsageScanner(contentType, text, { decode, limit }, onResponseId) : null;
}

/** Feed it every response chunk; read `usage` at the end. Streams: one SSE event at a time, split anywhere. */
export class UsageScanner {
  readonly #sse: boolean;
  /** A chunk may end inside a multi-byte character: the decoder keeps its first bytes for the next chunk. */
  readonly #decoder: StringDecoder | undefined;
  readonly #lineEnds = new LineEnds();
  #pending = '';
  /** The line being received, not a data line, grew past MAX_HELD_EVENT: the rest of it is skipped. */
  #skippingLine = false;
  /** The data line being received grew past MAX_HELD_EVENT: the rest of it goes to #oversized. */
  #oversizedLine = false;
  /** The data of the event being received grew past MAX_HELD_EVENT: only its ends are kept, and read (OversizedEvent). */
  #oversized: OversizedEvent | undefined;
  /**
   * The data of the event being received: its `data:` lines so far, joined with "\n" as the SSE spec (and the
   * SseRewriter) joins them; undefined before the first. Read once its blank line comes: a usage object split over two
   * lines was not read, though the rewriter, stripping it, saw it whole.
   */
  #data: string | undefined;
  /** A line of the event being received was skipped: it is not read. */
  #skippingEvent = false;
  #chunks: Buffer[] = [];
  #bytes = 0;
  /**
   * Once the answer is larger than MAX_JSON_BYTES, #chunks from #first on hold (at least) its last TAIL_BYTES and
   * #bytes counts them: whole chunks leave the front, and the tail is joined once, at the end. Joining it with every
   * chunk cost 1 s of the event loop for a 50 MiB answer in 1 KiB chunks.
   */
  #tailOnly = false;
  #first = 0;
  usage: Usage | undefined;
  /** A whole JSON answer (held, not only its tail) that reported no usage, once read: estimated-usage.ts counts its text. */
  unreported: Buffer | undefined;
  /**
   * SSE data events seen but a Responses stream's lifecycle events (LIFECYCLE_TYPE), which come before any generation:
   * the first one is a stream's first token (TTFT).
   */
  events = 0;
  /** An event said the generation failed (ERROR_EVENT): the answer is a fault, though its status is 200. */
  upstreamError = false;
  /**
   * SSE data events that carry generated text (CONTENT_EVENT): vLLM, SGLang and the simulator send one per decode
   * step, so they count a stream's output tokens when it ends without its usage chunk. Counted rather than the text
   * kept and tokenized: no memory per stream, one regular-expression test per event (the usage chunk is rarely missing).
   */
  contentEvents = 0;
  /** The `sequence_number` a Responses stream's next event would have (its last one's, plus one): an error event's. */
  nextSequence = 0;

  readonly #text: CompletionText | undefined;
  /** A compressed JSON answer (usageScannerFor): held whole in #chunks up to `limit` bytes, decoded at the end. */
  #compressed: { decode: Decode; limit: number } | undefined;
  /** Still waiting for a Responses answer's id: a stream's first event that carries its response object says it. */
  #onResponseId: OnResponseId | undefined;

  /** `text`: where the answer's text goes too (logging.logPrompts); every streamed event is parsed then. */
  constructor(contentType: string | undefined, text?: CompletionText, compressed?: { decode: Decode; limit: number }, onResponseId?: OnResponseId) {
    this.#sse = isEventStream(contentType);
    this.#decoder = this.#sse ? new StringDecoder('utf8') : undefined;
    this.#text = text;
    this.#compressed = compressed;
    this.#onResponseId = onResponseId;
  }

  /** Whether the answer is read as an event stream. */
  get stream(): boolean {
    return this.#sse;
  }

  push(chunk: Buffer): void {
    if (this.#decoder) this.#scanSse(this.#lineEnds.toLf(this.#decoder.write(chunk)));
    else if (this.#compressed) {
      this.#bytes += chunk.length;
      // Past the limit nothing more is held: the answer's usage is not read.
      if (this.#bytes <= this.#compressed.limit) this.#chunks.push(chunk);
      else this.#chunks = [];
    } else {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
      if (!this.#tailOnly && this.#bytes > MAX_JSON_BYTES) {
        // The id is the answer's first key: read before the start is dropped (the rest of it never is).
        if (this.#onResponseId) this.#leadingId();
        this.#tailOnly = true;
      }
      if (this.#tailOnly) this.#dropBeforeTail();
    }
  }

  /** Drops the chunks before the last TAIL_BYTES; the list is shortened once half of it is dropped (amortized O(1)). */
  #dropBeforeTail(): void {
    const chunks = this.#chunks;
    while (this.#bytes - chunks[this.#first].length >= TAIL_BYTES) this.#bytes -= chunks[this.#first++].length;
    if (this.#first * 2 >= chunks.length) {
      chunks.splice(0, this.#first);
      this.#first = 0;
    }
  }

  end(): Usage | undefined {
    if (this.#compressed) this.#decompress();
    if (this.#tailOnly) {
      const held = Buffer.concat(this.#first === 0 ? this.#chunks : this.#chunks.slice(this.#first), this.#bytes);
      this.#chunks = [];
      this.#tailOnly = false;
      // Not the whole answer: only its usage is read (the text of so large an answer is not logged).
      this.usage = usageOfJson(held.subarray(Math.max(0, held.length - TAIL_BYTES)));
    } else if (!this.#sse && this.#chunks.length > 0) {
      const body = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
      this.#chunks = [];
      this.usage = usageOfJson(body);
      if (!this.usage) this.unreported = body;
      this.#text?.addAnswer(body);
      if (this.#onResponseId) this.#tellId(responseIdOfJson(body));
    } else if (this.#sse) {
      // A stream that ended inside its last line (no line end after it), whose event, whole, went to the client as
      // legal SSE: that line is read too (its usage went uncounted, not even estimated). Half a line is no event.
      if (!this.#skippingLine && !this.#oversizedLine && this.#endsWhole(this.#pending)) this.#line(this.#pending);
      this.#pending = '';
      // A stream that ended after an event's lines, without its blank line: read, as its lines were before.
      this.#event();
    }
    return this.usage;
  }

  /** Whether `line`, a data line the stream ended in, completes its event's data (isWholeData). */
  #endsWhole(line: string): boolean {
    return line.startsWith('data:') && isWholeData(this.#data === undefined ? dataOf(line) : `${this.#data}\n${dataOf(line)}`);
  }

  /** The held compressed answer, decoded and read as any JSON answer is; one too large, or corrupt, has no usage. */
  #decompress(): void {
    const { decode, limit } = this.#compressed!;
    const [chunks, bytes] = [this.#chunks, this.#bytes];
    this.#compressed = undefined;
    this.#chunks = [];
    this.#bytes = 0;
    if (bytes === 0 || bytes > limit) return;
    try {
      this.push(decode(Buffer.concat(chunks, bytes), limit));
    } catch {
      // Not what its content-encoding says, or more than `limit` once decoded: nothing to count.
    }
  }

  #scanSse(text: string): void {
    // Only the new text is searched for a newline; the held start of a line has none. Searching the held text again
    // with every chunk made a long line quadratic: an event of 4 MiB without a newline, in 1 KiB chunks, took 4.4 s
    // of the event loop (1 MiB: 0.33 s); now each character is searched once (4 MiB: a few ms).
    let nl = text.indexOf('\n');
    if (nl === -1) {
      if (this.#oversizedLine) this.#oversized!.add(text);
      else if (!this.#skippingLine) {
        this.#pending += text;
        if (this.#pending.length > MAX_HELD_EVENT) this.#overlong();
      }
      return;
    }
    if (this.#oversizedLine) {
      this.#oversized!.add(text.slice(0, nl));
      this.#oversizedLine = false;
    } else if (this.#skippingLine) {
      this.#skippingLine = false;
      this.#skippingEvent = true;
    } else this.#line(this.#pending + text.slice(0, nl));
    let start = nl + 1;
    for (nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      this.#line(text.slice(start, nl));
      start = nl + 1;
    }
    this.#pending = text.slice(start);
  }

  /** The line being received grew past MAX_HELD_EVENT: a data line's rest goes to the event's ends, another's is skipped. */
  #overlong(): void {
    const line = this.#pending;
    this.#pending = '';
    if (this.#skippingEvent || !line.startsWith('data:')) this.#skippingLine = true;
    else {
      this.#beyond(dataOf(line));
      this.#oversizedLine = true;
    }
  }

  #line(line: string): void {
    if (line === '') {
      this.#event();
      return;
    }
    // Other fields (`event:`, `id:`) and comments say nothing tollgate reads.
    if (this.#skippingEvent || !line.startsWith('data:')) return;
    const data = dataOf(line);
    if (this.#data === undefined && !this.#oversized) this.#data = data;
    else if (this.#data !== undefined && this.#data.length + data.length < MAX_HELD_EVENT) this.#data += `\n${data}`;
    else this.#beyond(data);
  }

  /** More data of the event being received than may be held whole: from now on only its ends are kept. */
  #beyond(data: string): void {
    if (this.#oversized) this.#oversized.add(`\n${data}`);
    else {
      this.#oversized = new OversizedEvent(this.#data === undefined ? data : `${this.#data}\n${data}`);
      this.#data = undefined;
    }
  }

  /** The event received (its blank line came, or the stream ended after its lines): read. */
  #event(): void {
    const data = this.#data;
    const oversized = this.#oversized;
    this.#data = undefined;
    this.#oversized = undefined;
    this.#oversizedLine = false;
    this.#skippingEvent = false;
    // Not counted as an event, nor its text kept: only its response's id and its usage are read.
    if (oversized) return this.#readOversized(oversized);
    if (data === undefined) return;
    const type = RESPONSES_TYPE.exec(data)?.[0];
    if (type === undefined || !LIFECYCLE_TYPE.test(type)) this.events++;
    if (type !== undefined) this.#sequenceOf(data);
    if (isContentEvent(data, type)) this.contentEvents++;
    if (data.includes('"error"') && ERROR_EVENT.test(data)) this.upstreamError = true;
    this.#text?.addEvent(data);
    if (this.#onResponseId && data.includes('"response"')) this.#responseIdOf(data);
    // Only the chunk that carries usage is parsed; the rest pass at the cost of a substring search. With
    // stream_options.include_usage every chunk says "usage":null (as OpenAI's do): those pass too.
    if (!carriesUsage(data)) return;
    try {
      const ev = JSON.parse(data) as { usage?: RawUsage; response?: { usage?: RawUsage } };
      const u = toUsage(ev.usage ?? ev.response?.usage);
      if (u) this.usage = u;
    } catch {
      // Malformed event: passed through to the client as it is, nothing counted from it.
    }
  }

  /**
   * An event too long to hold: its response's id from its start, and its usage (the event's, or its response's) from
   * its end, where OpenAI, vLLM and the simulator put it, after the echoed request fields.
   */
  #readOversized(event: OversizedEvent): void {
    const id = this.#onResponseId && EVENT_RESPONSE_ID.exec(event.head)?.[1];
    if (id) this.#tellId(id);
    const tail = Buffer.from(event.tail);
    const key = tail.lastIndexOf(USAGE_KEY);
    const u = key === -1 ? undefined : usageNamed(tail, key, 2);
    if (u) this.usage = u;
  }

  /** A Responses event's `sequence_number` (OpenAI and vLLM write it second, after the type): the next is one more. */
  #sequenceOf(data: string): void {
    const n = Number(SEQUENCE_NUMBER.exec(data)?.[1]);
    if (Number.isSafeInteger(n)) this.nextSequence = n + 1;
  }

  /** A large JSON answer's id, from its first bytes. */
  #leadingId(): void {
    const parts: Buffer[] = [];
    for (let i = 0, n = 0; i < this.#chunks.length && n < 256; n += this.#chunks[i++].length) parts.push(this.#chunks[i]);
    this.#tellId(leadingId(Buffer.concat(parts)));
  }

  /** response.created, the first event, is small (no output yet): parsed once, or the next event that has the object. */
  #responseIdOf(data: string): void {
    try {
      const id = (JSON.parse(data) as { response?: { id?: unknown } }).response?.id;
      if (typeof id === 'string') this.#tellId(id);
    } catch {
      // Malformed event: the next one may say.
    }
  }

  /** The answer's id is settled (found, or not to be found): told once, and nothing more is searched for it. */
  #tellId(id: string | undefined): void {
    const tell = this.#onResponseId!;
    this.#onResponseId = undefined;
    if (id) tell(id);
  }
}

/**
 * A non-empty string under a key that holds generated text: chat's `content` (or `reasoning_content`, `reasoning`),
 * a tool call's `arguments`, completions' `text`, a Responses delta's `delta`. Not the role chunk (`"content":""`),
 * a finish chunk (`"delta":{}`) or the usage chunk. A JSON string cannot hold an unescaped `"key":"`, so text inside
 * a value never matches.
 */
const CONTENT_EVENT = /"(?:content|reasoning_content|reasoning|arguments|text|delta)": ?"[^"]/;
/** A Responses API event's type: only its `*.delta` events stream text; the `*.done` ones repeat the whole of it. */
const RESPONSES_TYPE = /"type": ?"response\.[a-z_.]*"/;

/** A Responses event's own number: a JSON string cannot hold an unescaped `"sequence_number":`. */
const SEQUENCE_NUMBER = /"sequence_number": ?(\d{1,15})/;
/** The Responses events a server sends as it takes the request, before the first token: queued, and prefill after them. */
const LIFECYCLE_TYPE = /"response\.(?:created|in_progress|queued)"$/;
/**
 * An event reporting the generation failed mid-stream: vLLM's `{"error":{...}}` (then `[DONE]`), a Responses `error`
 * or `response.failed` event. The key is the event's own: a JSON string cannot hold an unescaped `"type":"`.
 */
const ERROR_EVENT = /^\s*\{\s*"error"\s*:\s*\{|"type": ?"(?:error|response\.failed)"/;

/** Whether `data`, whose Responses event type (RESPONSES_TYPE's match) is `type`, carries generated text. */
function isContentEvent(data: string, type: string | undefined): boolean {
  return type ? type.endsWith('.delta"') && CONTENT_EVENT.test(data) : CONTENT_EVENT.test(data);
}

/** `"usage"` followed by an object somewhere in an event's data (not `"usage":null`). */
function carriesUsage(data: string): boolean {
  for (let at = data.indexOf('"usage"'); at !== -1; at = data.indexOf('"usage"', at + 7)) {
    let i = at + 7;
    while (data.charCodeAt(i) === 32) i++;
    if (data.charCodeAt(i) !== 58 /* : */) continue;
    i++;
    while (data.charCodeAt(i) === 32) i++;
    if (data.charCodeAt(i) === 123 /* { */) return true;
  }
  return false;
}

/**
 * The text of an answer tollgate gives itself (a cache hit), into `text` (logging.logPrompts) as the scanner reads a
 * model server's, JSON or events.
 */
export function readAnswerText(text: CompletionText, r: { headers: Record<string, string>; body: string | Buffer }): void {
  const scanner = new UsageScanner(r.headers['content-type'], text);
  scanner.push(typeof r.body === 'string' ? Buffer.from(r.body) : r.body);
  scanner.end();
}
