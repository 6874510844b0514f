// Rewriting a server-sent-event stream event by event as it passes: response policies and tollgate's own
// usage stripping see each event's `data:` payload whole, however the upstream split the bytes.
import { StringDecoder } from 'node:string_decoder';
import type { ResponseFlow } from './hooks.js';

const CR_LINE_END = /\r\n?/g;
const TRAILING_LINE_ENDS = /\n+$/;

/**
 * SSE lines may end in CRLF or CR as well as LF: text passed through here, chunk by chunk, has them all as LF, so that
 * events and lines are found (a stream in CRLF used to be held whole until it ended). A CR ends its line at once, and
 * an LF right after it, at the start of the next chunk, is dropped then: holding a chunk's last CR for the next one
 * held each event of a CR stream until the next event came.
 */
export class LineEnds {
  #afterCr = false;

  toLf(text: string): string {
    if (this.#afterCr && text.charCodeAt(0) === 10) text = text.slice(1);
    // An empty chunk (a character split across chunks) says nothing about what follows the CR.
    if (text !== '') this.#afterCr = text.charCodeAt(text.length - 1) === 13;
    return text.includes('\r') ? text.replace(CR_LINE_END, '\n') : text;
  }
}

/**
 * The longest SSE event (or line) tollgate holds, in characters or bytes, here, in the proxy's plain pass-through and
 * in the usage scanner: past it, what is held goes on as it is. Memory per stream stays bounded whatever a model
 * server sends (a 300 MiB line without a newline took a gateway to 1.3 GB).
 */
export const MAX_HELD_EVENT = 4 * 1024 * 1024;

/**
 * Returns the new payload, several (each its own event: one that ends a text part may need the part's held tail sent
 * first), or null to drop the event.
 */
export type EventRewrite = (data: string) => string | string[] | null;

/**
 * What a rewrite is given in place of an event longer than MAX_HELD_EVENT, which it never reads. Given back, the event
 * goes on as it comes (an observer, such as a cache, must not trust what it gathered); anything else replaces the event
 * (a sanitizer's error event), which is then dropped. No payload can be this: the rewriter turns every CR into a line end.
 */
export const UNREAD_EVENT = '\runread event\r';

/** Holds back at most one incomplete event; every complete event passes at once. */
export class SseRewriter {
  readonly #rewrite: EventRewrite;
  #pending = '';
  // A chunk may end inside a multi-byte character; the decoder keeps those bytes for the next one.
  readonly #decoder = new StringDecoder('utf8');
  readonly #lineEnds = new LineEnds();
  /** Passing an oversized event through until its closing blank line (MAX_HELD_EVENT). */
  #passing = false;
  /** While passing: whether what went last ended with LF (a blank line may be split across chunks). */
  #lastNl = false;
  /** While passing: the rewrite put something in the oversized event's place, so the event itself is dropped. */
  #dropping = false;

  /** What the rewrite still holds once a stream has ended (the flow's eventsAtEnd): none when it does not hold any. */
  readonly #atEnd: (() => string[]) | undefined;

  constructor(rewrite: EventRewrite, atEnd?: () => string[]) {
    this.#rewrite = rewrite;
    this.#atEnd = atEnd;
  }

  push(chunk: Buffer): string {
    let fresh = this.#lineEnds.toLf(this.#decoder.write(chunk));
    let passed = '';
    if (this.#passing) {
      const end = this.#lastNl && fresh.charCodeAt(0) === 10 ? 1 : blankLineEnd(fresh);
      if (end === -1) {
        // No blank line yet: the oversized event goes on.
        if (fresh !== '') this.#lastNl = fresh.endsWith('\n');
        return this.#dropping ? '' : fresh;
      }
      this.#passing = false;
      if (!this.#dropping) passed = fresh.slice(0, end);
      this.#dropping = false;
      fresh = fresh.slice(end);
    }
    return passed + this.#push(fresh);
  }

  #push(fresh: string): string {
    // Only the new text (and the blank line it may complete) is searched: the held event has no blank line. Searching
    // pending + chunk again with every chunk made a long event quadratic: 4 MiB without a blank line, in 1 KiB chunks,
    // took 7 s of the event loop (1 MiB: 0.47 s); now each character is searched once (10 MiB: tens of ms).
    let cut = fresh.lastIndexOf('\n\n');
    if (cut !== -1) cut += this.#pending.length;
    else if (fresh.charCodeAt(0) === 10 && this.#pending.endsWith('\n')) cut = this.#pending.length - 1;
    else {
      this.#pending += fresh;
      if (this.#pending.length <= MAX_HELD_EVENT) return '';
      const held = this.#pending;
      this.#pending = '';
      this.#passing = true;
      this.#lastNl = held.endsWith('\n');
      const instead = this.#rewrite(UNREAD_EVENT);
      if (instead === UNREAD_EVENT) return held;
      this.#dropping = true;
      return instead === null ? '' : render(headLines(held), instead);
    }
    const text = this.#pending + fresh;
    this.#pending = text.slice(cut + 2);
    let out = '';
    for (const event of text.slice(0, cut).split('\n\n')) out += this.#event(event);
    return out;
  }

  /**
   * What is left once the upstream has finished: an event without its closing blank line, rewritten as though it had
   * come (passed as it was, it went by every rewrite, a sanitizer's too), or as it was when the rewrite keeps it.
   */
  end(): string {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    if (this.#dropping) return '';
    const event = this.#passing ? '' : rest.replace(TRAILING_LINE_ENDS, '');
    let out = event === '' ? rest : this.#event(event);
    if (out === `${event}\n\n`) out = rest;
    // The text a rewrite still holds (a sanitizer's held-back end): a stream that ends without the event that would have
    // let it go (finish_reason, [DONE]) lost it.
    const held = this.#atEnd?.() ?? [];
    if (held.length === 0) return out;
    const blankLine = out === '' || out.endsWith('\n\n') ? '' : out.endsWith('\n') ? '\n' : '\n\n';
    return out + blankLine + render(NO_LINES, held);
  }

  /**
   * Whether the upstream, now finished, stopped inside an event whose data is cut short (a close-delimited stream whose
   * server died): not to be passed on, nor given to a rewrite, which would pass on what it cannot read.
   */
  cutShort(): boolean {
    return !this.#passing && isCutShort(this.#pending);
  }

  #event(event: string): string {
    if (event === '') return '';
    // Nearly every event is one `data:` line: read without splitting it into lines (a stream's every chunk comes
    // through here when tollgate strips the usage it asked for).
    let data: string;
    let others: readonly string[] = NO_LINES;
    if (event.startsWith('data:') && !event.includes('\n')) data = dataOf(event);
    else {
      const lines = event.split('\n');
      const dataLines = lines.filter((l) => l.startsWith('data:'));
      if (dataLines.length === 0) return `${event}\n\n`;
      data = dataLines.map(dataOf).join('\n');
      others = lines.filter((l) => !l.startsWith('data:'));
    }
    const next = this.#rewrite(data);
    if (next === null) return '';
    if (next === data) return `${event}\n\n`;
    return render(others, next);
  }
}

const NO_LINES: readonly string[] = [];

/** The lines an event starts with before its first `data:` line (`event:`, `id:`), from the start of an event. */
function headLines(start: string): string[] {
  const lines: string[] = [];
  for (let at = 0; at < start.length; ) {
    const nl = start.indexOf('\n', at);
    if (nl === -1 || start.startsWith('data:', at)) break;
    if (nl > at) lines.push(start.slice(at, nl));
    at = nl + 1;
  }
  return lines;
}

const LINE_END = /\r\n?|\n/;

/**
 * Whether `rest`, what a stream ends with after its last blank line, is an event cut short: its data neither `[DONE]`
 * nor JSON, or an event begun (an `event:` or `id:` line, or one of those names or `data` cut short) before any data.
 * A last event without its blank line that is whole goes on (legal SSE), as do comments (keep-alives) and fields that
 * begin no event (`retry:`, unknown ones); a half one reached clients as JSON no SDK parses, or as a responses-API
 * `event:` line with nothing after it, and the record showed no fault.
 */
export function isCutShort(rest: string): boolean {
  let data: string | undefined;
  let begun = false;
  for (const line of rest.split(LINE_END)) {
    // A line without a colon is a field with an empty value (the SSE spec): a bare `data` is a data line.
    if (line.startsWith('data:') || line === 'data') data = data === undefined ? dataOf(line) : `${data}\n${dataOf(line)}`;
    else if (beginsEvent(line)) begun = true;
  }
  return data === undefined ? begun : !isWholeData(data);
}

/** Whether an event's data is whole: `[DONE]`, or JSON. */
export function isWholeData(data: string): boolean {
  if (data === '[DONE]') return true;
  try {
    JSON.parse(data);
    return true;
  } catch {
    return false;
  }
}

/** Field names whose line starts an event's lines (`data` is read as data). */
const EVENT_FIELDS = ['event', 'id', 'data'];

/** An `event:` or `id:` line, or a line that is one of the event fields' names, whole or cut short (`eve`, `dat`). */
function beginsEvent(line: string): boolean {
  const colon = line.indexOf(':');
  if (colon === -1) return line !== '' && EVENT_FIELDS.some((f) => f.startsWith(line));
  const name = line.slice(0, colon);
  return name === 'event' || name === 'id';
}

/** A `data:` line's payload (the one space after the colon is not part of it). */
export function dataOf(line: string): string {
  return line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
}

/** Payloads as events with the other lines of the event they came from. */
function render(lines: readonly string[], next: string | string[]): string {
  if (typeof next === 'string') return renderOne(lines, next);
  // Each event named for its type; the event's id goes with the last (an id is the position to resume after).
  return next
    .map((d, i) => renderOne(lines.filter((l) => i === next.length - 1 || !l.startsWith('id:')).map((l) => (l.startsWith('event:') ? `event: ${typeOf(d) ?? l.slice(6).trim()}` : l)), d))
    .join('');
}

function renderOne(lines: readonly string[], data: string): string {
  if (lines.length === 0 && !data.includes('\n')) return `data: ${data}\n\n`;
  return `${[...lines, ...data.split('\n').map((l) => `data: ${l}`)].join('\n')}\n\n`;
}

/** The `type` of a JSON payload: an event a rewrite added is named for it (the responses API names events so). */
function typeOf(data: string): string | undefined {
  try {
    const type = (JSON.parse(data) as { type?: unknown }).type;
    return typeof type === 'string' ? type : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Each event through every rewrite in order: a dropped one stops there, and the several events one rewrite makes of
 * one each go through the rest on their own.
 */
export function pipeEvents(rewrites: readonly EventRewrite[]): EventRewrite {
  if (rewrites.length === 1) return rewrites[0];
  return (data) => {
    let out: string | string[] | null = data;
    for (let i = 0; i < rewrites.length && out !== null; i++) {
      if (typeof out === 'string') out = rewrites[i](out);
      else {
        const next: string[] = [];
        for (const d of out) {
          const r = rewrites[i](d);
          if (r !== null) next.push(...(typeof r === 'string' ? [r] : r));
        }
        out = next.length === 0 ? null : next;
      }
    }
    return out;
  };
}

/**
 * `policy`, then tollgate's own usage stripping when `strip` (the client did not ask for usage), or either alone. The
 * policies see the usage chunk: a cache stores the answer with its usage, for clients that do ask.
 */
export function withUsageStripped(policy: EventRewrite | undefined, strip: boolean): EventRewrite | null {
  if (!strip) return policy ?? null;
  return policy ? pipeEvents([policy, stripUsage]) : stripUsage;
}

/** `flow`'s events at a stream's end (ResponseFlow.eventsAtEnd), through tollgate's usage stripping when `strip`. */
export function eventsAtEnd(flow: ResponseFlow | undefined, strip: boolean): (() => string[]) | undefined {
  const held = flow?.eventsAtEnd?.bind(flow);
  if (!held || !strip) return held;
  return () => held().flatMap((data) => stripUsage(data) ?? []);
}

/** Where the first blank line of `text` ends (the index past it), or -1. */
function blankLineEnd(text: string): number {
  const at = text.indexOf('\n\n');
  return at === -1 ? -1 : at + 2;
}

/** With include_usage on, servers add `"usage":null` to every chunk; a client that did not ask never sees it. */
const NULL_USAGE = /,\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,?/g;
const NULL_USAGE_LAST = ',"usage":null}';

/**
 * For a stream whose client did not ask for usage (tollgate turned stream_options.include_usage on for its own
 * accounting): drops the usage-only event, and the `usage` fields of the others (`null`, or the figures some servers
 * put on a content chunk: llama.cpp's last one, vLLM's continuous usage stats), so the client sees no difference.
 */
export const stripUsage = (data: string): string | null => {
  // vLLM's and SGLang's every chunk once usage is asked for: the field last, written without spaces.
  if (data.endsWith(NULL_USAGE_LAST)) {
    const cleaned = `${data.slice(0, -NULL_USAGE_LAST.length)}}`;
    if (!cleaned.includes('"usage"')) return cleaned;
  }
  if (!data.includes('"usage"')) return data;
  const cleaned = data.replace(NULL_USAGE, '');
  if (!cleaned.includes('"usage"')) return cleaned;
  try {
    const ev = JSON.parse(cleaned) as { choices?: unknown[]; usage?: unknown };
    if (ev.usage === null || typeof ev.usage !== 'object') return cleaned;
    // A usage chunk with no `choices` key at all is the same event (the client never asked for it): with its usage
    // taken out, it reached the client as a chunk without choices, which the usual client loop cannot read.
    if (!Array.isArray(ev.choices) || ev.choices.length === 0) return null;
    delete ev.usage;
    return JSON.stringify(ev);
  } catch {
    // Not JSON: passed on as it is.
  }
  return cleaned;
};
