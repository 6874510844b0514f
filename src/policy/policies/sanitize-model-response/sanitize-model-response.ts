// SanitizeModelResponse: the same filters over the model's answer, its text and its tool calls' arguments. A whole JSON
// answer is scanned and redacted in place or replaced by a 403 fault; a stream is sanitized per choice (and per tool
// call) with a holdback window (see StreamRedactor for the guarantee), and a blocking finding ends it with an SSE error
// event. Logprobs are dropped while a filter is on.
import { sanitizeModelResponseSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault, type GatewayError } from '../../../gateway/errors.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import { MAX_HELD_EVENT, UNREAD_EVENT } from '../../../gateway/sse-rewriter.js';
import { errorEventData, responsesErrorData } from '../../../gateway/stream-fault.js';
import type { Finding } from '../../sanitize/finding.js';
import { redact } from '../../sanitize/redact.js';
import { Scanner } from '../../sanitize/scanner.js';
import { StreamRedactor } from '../../sanitize/stream-redactor.js';
import { classifierCheck, describe, type ClassifierCheck } from '../../sanitize/verdict.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { jsonTextScanner } from './json-text.js';

export const SANITIZE_MODEL_RESPONSE = 'sanitize-model-response';

export const SANITIZE_MODEL_RESPONSE_FAULTS = {
  modelResponseBlocked: 'steps.sanitize.ModelResponseBlocked',
  classifierUnavailable: 'steps.sanitize.ClassifierUnavailable',
} as const;

interface Choice {
  index?: number;
  text?: unknown;
  finish_reason?: string | null;
  logprobs?: unknown;
  message?: { content?: unknown; refusal?: unknown; reasoning_content?: unknown; reasoning?: unknown; tool_calls?: unknown };
  delta?: { content?: unknown; refusal?: unknown; reasoning_content?: unknown; reasoning?: unknown; tool_calls?: unknown };
}

/** A chat tool call, whole (`message.tool_calls`) or a fragment of one (`delta.tool_calls`, by `index`; `id` on its first). */
interface ToolCall {
  index?: number;
  id?: unknown;
  function?: { arguments?: unknown };
}

function toolCalls(holder: { tool_calls?: unknown } | undefined): ToolCall[] {
  const calls = holder?.tool_calls;
  return Array.isArray(calls) ? calls.filter((t): t is ToolCall => t !== null && typeof t === 'object') : [];
}

/** Chat fields beside `content` that carry the model's text: a refusal, and vLLM's reasoning (two spellings). */
const REASONING_FIELDS = ['reasoning_content', 'reasoning'] as const;
const SIDE_FIELDS = ['refusal', ...REASONING_FIELDS] as const;

/**
 * A responses-API output item: a message's parts hold `text` (output_text, with its `logprobs`) or `refusal`; a
 * reasoning item's hold `text` (reasoning_text), and its `summary` parts `text` too. A tool call has `arguments`
 * (JSON: function_call, mcp_call) or `input` (custom_tool_call).
 */
interface OutputItem {
  type?: string;
  arguments?: unknown;
  input?: unknown;
  content?: { type?: string; text?: unknown; refusal?: unknown; logprobs?: unknown }[];
  summary?: { type?: string; text?: unknown }[];
}

interface Answer {
  object?: string;
  choices?: Choice[];
  output?: OutputItem[];
  output_text?: unknown;
  error?: unknown;
}

/** A text of the answer; `json`: JSON text (a tool call's arguments), read with jsonTextScanner. */
type Slot = { get: () => string; set: (t: string) => void; json?: boolean };

const blockedFault = (findings: readonly Finding[]) => policyFault(403, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked, `The model's answer was blocked: ${describe(findings)}`);
const unreadFault = () =>
  policyFault(403, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked, `The model's answer was blocked: an event longer than ${MAX_HELD_EVENT / 1024 / 1024} MiB, too long to scan`);

/** A slot for `holder[field]` when it is a string. */
function field<T extends object>(holder: T, key: keyof T & string, out: Slot[], json = false): void {
  const h = holder as Record<string, unknown>;
  if (typeof h[key] === 'string') out.push({ get: () => h[key] as string, set: (t) => (h[key] = t), json });
}

/**
 * The text fields of a whole answer: chat message content, refusal, reasoning and tool-call arguments, completions
 * text, responses-API output.
 */
function answerSlots(a: Answer): Slot[] {
  const out: Slot[] = [];
  for (const c of Array.isArray(a.choices) ? a.choices : []) {
    if (c?.message) {
      field(c.message, 'content', out);
      for (const name of SIDE_FIELDS) field(c.message, name, out);
      for (const call of toolCalls(c.message)) if (call.function) field(call.function, 'arguments', out, true);
    }
    if (c) field(c, 'text', out);
  }
  outputSlots(a, out);
  return out;
}

/** The responses API's text: every part of every output item, and the `output_text` some servers add. */
function outputSlots(a: { output?: unknown; output_text?: unknown }, out: Slot[]): void {
  for (const item of Array.isArray(a.output) ? (a.output as OutputItem[]) : []) partSlots(item, out);
  field(a, 'output_text', out);
}

function partSlots(item: OutputItem | undefined, out: Slot[]): void {
  if (item) {
    field(item, 'arguments', out, true);
    field(item, 'input', out);
  }
  for (const part of Array.isArray(item?.content) ? item.content : []) {
    if (!part) continue;
    field(part, 'text', out);
    field(part, 'refusal', out);
  }
  for (const part of Array.isArray(item?.summary) ? item.summary : []) if (part) field(part, 'text', out);
}

/**
 * Logprobs spell the answer out again token by token (with each token's bytes and the likely alternatives), where no
 * redaction reaches, and a stream sends a chunk's logprobs at once while its text is held back: with a filter on, they
 * are dropped, written as each API writes "none" (`none`: null in chat and completions, [] in the responses API).
 * Returns whether there were any.
 */
function dropLogprobs(holder: { logprobs?: unknown }, none: null | []): boolean {
  const lp = holder.logprobs;
  if (lp == null || (Array.isArray(lp) && lp.length === 0)) return false;
  holder.logprobs = none;
  return true;
}

/** Drops the logprobs of every part of a responses-API output item. */
function dropPartLogprobs(item: OutputItem | undefined): boolean {
  let dropped = false;
  for (const part of Array.isArray(item?.content) ? item.content : []) if (part) dropped = dropLogprobs(part, []) || dropped;
  return dropped;
}

/** Drops a whole answer's (or a responses-API event's response's) logprobs: every choice's and output part's. */
function dropAnswerLogprobs(a: { choices?: unknown; output?: unknown }): boolean {
  let dropped = false;
  for (const c of Array.isArray(a.choices) ? (a.choices as Choice[]) : []) if (c) dropped = dropLogprobs(c, null) || dropped;
  for (const item of Array.isArray(a.output) ? (a.output as OutputItem[]) : []) dropped = dropPartLogprobs(item) || dropped;
  return dropped;
}

/** The policy's scanner, and the same over JSON text (jsonTextScanner). */
interface Scanners {
  text: Scanner;
  json: Pick<Scanner, 'scan'>;
}

/** Redacts every slot in place; returns whether any changed. @throws the 403 fault on a blocking finding. */
function sanitizeSlots(slots: readonly Slot[], scanners: Scanners): boolean {
  let changed = false;
  for (const slot of slots) {
    const findings = (slot.json ? scanners.json : scanners.text).scan(slot.get());
    const blocking = findings.filter((f) => f.action === 'block');
    if (blocking.length > 0) throw blockedFault(blocking);
    const text = redact(slot.get(), findings);
    if (text !== slot.get()) {
      slot.set(text);
      changed = true;
    }
  }
  return changed;
}

async function sanitizeBody(body: Buffer, scanners: Scanners, classifier: ClassifierCheck | undefined): Promise<Buffer> {
  let answer: Answer;
  try {
    answer = JSON.parse(body.toString('utf8')) as Answer;
  } catch {
    return body;
  }
  if (answer === null || typeof answer !== 'object') return body;
  const slots = answerSlots(answer);
  let changed = sanitizeSlots(slots, scanners);
  if (scanners.text.active) changed = dropAnswerLogprobs(answer) || changed;
  if (classifier && slots.length > 0) {
    const f = await classifier.check(slots.map((s) => s.get()).join('\n'));
    if (f) throw blockedFault([f]);
  }
  return changed ? Buffer.from(JSON.stringify(answer)) : body;
}

/** A responses-API stream event (`type: response.*`), with what the sanitizer reads of it. */
interface ResponsesEvent {
  type: string;
  sequence_number?: number;
  item_id?: string;
  output_index?: number;
  content_index?: number;
  /** A reasoning summary's part (its events have no content_index). */
  summary_index?: number;
  delta?: unknown;
  text?: unknown;
  refusal?: unknown;
  arguments?: unknown;
  input?: unknown;
  logprobs?: unknown;
  part?: { text?: unknown; refusal?: unknown; logprobs?: unknown };
  item?: OutputItem;
  response?: { output?: unknown; output_text?: unknown };
}

/**
 * How a part's text (output, refusal, reasoning or its summary) or a tool call's arguments stream: its delta event,
 * and the field of the event that ends it (DELTA_OF's key), which repeats it whole.
 */
interface Streamed {
  delta: string;
  field: 'text' | 'refusal' | 'arguments' | 'input';
  /** JSON text (jsonTextScanner). */
  json?: boolean;
}
const DELTA_OF: Record<string, Streamed> = {
  'response.output_text.done': { delta: 'response.output_text.delta', field: 'text' },
  'response.refusal.done': { delta: 'response.refusal.delta', field: 'refusal' },
  'response.reasoning_text.done': { delta: 'response.reasoning_text.delta', field: 'text' },
  'response.reasoning_summary_text.done': { delta: 'response.reasoning_summary_text.delta', field: 'text' },
  'response.function_call_arguments.done': { delta: 'response.function_call_arguments.delta', field: 'arguments', json: true },
  'response.mcp_call_arguments.done': { delta: 'response.mcp_call_arguments.delta', field: 'arguments', json: true },
  'response.custom_tool_call_input.done': { delta: 'response.custom_tool_call_input.delta', field: 'input' },
};
const DELTAS = new Map(Object.values(DELTA_OF).map((s) => [s.delta, s]));

/**
 * The flow over a stream's events: content rewritten as the redactor releases it, logprobs dropped; an error event on a
 * block, or in place of an event too long to read (`responsesApi`: in that API's shape).
 */
function streamFlow(ctx: RequestContext, scanners: Scanners, holdback: number, responsesApi: boolean): ResponseFlow {
  const redactor = new StreamRedactor(scanners.text, holdback);
  /** Tool-call arguments, JSON text written in fragments: held back like text, each call on a stream of its own. */
  const args = new StreamRedactor(scanners.json, holdback);
  let ended = false;
  let last: Record<string, unknown> | undefined;
  /**
   * The redactors' stream of each responses-API (delta type, output item, content or summary part), and of each chat
   * choice's side field and tool call.
   */
  const streams = new Map<string, number>();
  const streamOf = (key: string) => {
    let i = streams.get(key);
    if (i === undefined) streams.set(key, (i = -1 - streams.size));
    return i;
  };
  /** The tool calls (by index) of each chat choice whose arguments may still be held. */
  const calls = new Map<number, Set<number>>();
  const callStream = (index: number, t: number) => streamOf(`tool_calls:${index}:${t}`);
  /** The held ends of choice `index`'s tool calls but `keep`, as fragments of them; or the finding that blocks. */
  const flushCalls = (index: number, keep?: number): { entries: ToolCall[]; blocked?: Finding } => {
    const entries: ToolCall[] = [];
    const open = calls.get(index);
    for (const t of open ?? []) {
      if (t === keep) continue;
      open!.delete(t);
      const e = args.flush(callStream(index, t));
      if (e.blocked) return { entries, blocked: e.blocked };
      if (e.text !== '') entries.push({ index: t, function: { arguments: e.text } });
    }
    return { entries };
  };
  /** Held ends of choice `c`'s tool calls: onto the call's fragment in its chunk, or in a choice `before` it. */
  const release = (c: Choice, entries: ToolCall[], before: Choice[]) => {
    const here = toolCalls(c.delta);
    const ahead = entries.filter((entry) => {
      const call = here.find((h) => (h.index ?? 0) === entry.index);
      if (!call) return true;
      const held = typeof call.function?.arguments === 'string' ? call.function.arguments : '';
      call.function = { ...call.function, arguments: held + (entry.function!.arguments as string) };
      return false;
    });
    if (ahead.length > 0) before.push({ index: c.index ?? 0, delta: { tool_calls: ahead }, logprobs: null, finish_reason: null });
  };
  /** A Responses event's number: an error raised while it is read takes its place; one after the last, the next. */
  let sequence = 0;
  const failWith = (fault: GatewayError, responsesApi: boolean, afterLast = false): string | string[] => {
    ended = true;
    // The status went out as 200: the fault is what records, metrics and the access log say the client was told.
    ctx.errorCode = fault.code;
    if (!responsesApi) return errorEventData(fault);
    // As a list of events: the stream names its events, and a list's events are named for their type (`error`).
    return [responsesErrorData(fault, afterLast ? sequence + 1 : sequence)];
  };
  const fail = (f: Finding, responsesApi = false) => failWith(blockedFault([f]), responsesApi);
  const list = (out: string | string[]) => (typeof out === 'string' ? [out] : out);

  /**
   * What is still held of the chat choices (text, side fields, tool calls), as one more chunk like the last; the
   * error event instead on a block; none when nothing is held.
   */
  const heldChat = (): string[] => {
    if (!last) return [];
    const byChoice = new Map<number, Record<string, unknown>>();
    const deltaOf = (index: number) => byChoice.get(index) ?? byChoice.set(index, {}).get(index)!;
    // A side field's stream has a negative number (streamOf), its field and choice in its key; one entry per choice.
    const sideOf = new Map([...streams].map(([key, i]) => [i, key.split(':')]));
    for (const i of redactor.pending()) {
      const e = redactor.flush(i);
      if (e.blocked) return list(fail(e.blocked));
      const [name, index] = i >= 0 ? ['content', String(i)] : sideOf.get(i)!;
      deltaOf(Number(index))[name] = e.text;
    }
    for (const index of calls.keys()) {
      const f = flushCalls(index);
      if (f.blocked) return list(fail(f.blocked));
      if (f.entries.length > 0) deltaOf(index).tool_calls = f.entries;
    }
    if (byChoice.size === 0) return [];
    const choices = [...byChoice].map(([index, delta]) => ({ index, delta, logprobs: null, finish_reason: null }));
    return [JSON.stringify({ ...last, choices })];
  };

  /** A responses-API delta stream's event without its delta, by the stream's number: its held end goes out as one. */
  const deltaHeads = new Map<number, { redactor: StreamRedactor; head: Record<string, unknown> }>();
  /** What is still held of the responses-API deltas, each as one more delta event; the error event instead on a block. */
  const heldDeltas = (): string[] => {
    const out: string[] = [];
    for (const [i, { redactor: r, head }] of deltaHeads) {
      const e = r.flush(i);
      if (e.blocked) return list(failWith(blockedFault([e.blocked]), true, true));
      if (e.text !== '') out.push(JSON.stringify({ ...head, delta: e.text }));
    }
    return out;
  };

  /**
   * The responses API: text (output, refusal, reasoning and its summary) comes as deltas per output item and part,
   * released as the redactor lets it go; the events that end a part, an item or the response repeat the whole text,
   * which is redacted whole (and blocks as the deltas would). The held end of a part goes out as one more delta, just
   * before the event that ends it.
   */
  const responsesEvent = (e: ResponsesEvent, data: string): string | string[] => {
    if (Number.isSafeInteger(e.sequence_number)) sequence = e.sequence_number!;
    const summary = e.summary_index !== undefined;
    const part = summary ? `${e.output_index}:s${e.summary_index}` : `${e.output_index}:${e.content_index}`;
    const streamed = DELTAS.get(e.type);
    if (streamed && typeof e.delta === 'string') {
      const r = streamed.json ? args : redactor;
      const i = streamOf(`${e.type}:${part}`);
      const out = r.push(i, e.delta);
      if (out.blocked) return fail(out.blocked, true);
      if (!deltaHeads.has(i)) {
        const at = summary ? { summary_index: e.summary_index } : { content_index: e.content_index };
        deltaHeads.set(i, { redactor: r, head: { type: e.type, item_id: e.item_id, output_index: e.output_index, ...at } });
      }
      e.delta = out.text;
      dropLogprobs(e, []);
      return JSON.stringify(e);
    }
    const slots: Slot[] = [];
    let tail: string | undefined;
    const ends = DELTA_OF[e.type];
    if (ends) {
      const out = (ends.json ? args : redactor).flush(streamOf(`${ends.delta}:${part}`));
      if (out.blocked) return fail(out.blocked, true);
      tail = out.text;
      field(e, ends.field, slots, ends.json);
    } else if (e.part) {
      field(e.part, 'text', slots);
      field(e.part, 'refusal', slots);
    } else if (e.item) partSlots(e.item, slots);
    else if (e.response) outputSlots(e.response, slots);
    let changed: boolean;
    try {
      changed = sanitizeSlots(slots, scanners);
    } catch (err) {
      return failWith(err as GatewayError, true);
    }
    // An output_text.done's own, a content part's, an output item's parts', a response's.
    if (dropLogprobs(e, [])) changed = true;
    if (e.part && dropLogprobs(e.part, [])) changed = true;
    if (dropPartLogprobs(e.item)) changed = true;
    if (e.response && dropAnswerLogprobs(e.response)) changed = true;
    if (!changed && !tail) return data;
    const whole = changed ? JSON.stringify(e) : data;
    if (!tail) return whole;
    const at = summary ? { summary_index: e.summary_index } : { content_index: e.content_index };
    return [JSON.stringify({ type: ends!.delta, item_id: e.item_id, output_index: e.output_index, ...at, delta: tail }), whole];
  };

  return {
    event(data) {
      if (ended) return null;
      // Not read, so not let through: the stream ends here.
      if (data === UNREAD_EVENT) return failWith(unreadFault(), responsesApi);
      if (data === '[DONE]') {
        // A server that never finished a choice: what is held goes out just before [DONE] rather than never (sent in
        // its place, [DONE] never came, and a client waiting for it hung).
        const held = heldChat();
        return ended ? held : held.length === 0 ? data : [...held, data];
      }
      let chunk: Answer & Record<string, unknown>;
      try {
        chunk = JSON.parse(data) as Answer & Record<string, unknown>;
      } catch {
        return data;
      }
      if (chunk === null || typeof chunk !== 'object') return data;
      if (typeof chunk.type === 'string' && chunk.type.startsWith('response.')) return responsesEvent(chunk as unknown as ResponsesEvent, data);
      if (!Array.isArray(chunk.choices) || chunk.choices.length === 0) return data;
      last = chunk;
      /** Choices' held tool-call ends that go out in a chunk of their own, ahead of this one. */
      const before: Choice[] = [];
      for (const c of chunk.choices) {
        const index = c.index ?? 0;
        dropLogprobs(c, null);
        const source = c.delta && typeof c.delta.content === 'string' ? 'delta' : typeof c.text === 'string' ? 'text' : null;
        let out = '';
        if (source) {
          const e = redactor.push(index, source === 'delta' ? (c.delta!.content as string) : (c.text as string));
          if (e.blocked) return fail(e.blocked);
          out = e.text;
        }
        // A refusal and a reasoning server's reasoning stream beside the content, each through a redactor stream of its own.
        const side: Record<string, string> = {};
        for (const name of SIDE_FIELDS) {
          const text = (c.delta as Record<string, unknown> | undefined)?.[name];
          if (typeof text !== 'string') continue;
          const e = redactor.push(streamOf(`${name}:${index}`), text);
          if (e.blocked) return fail(e.blocked);
          side[name] = e.text;
        }
        for (const call of toolCalls(c.delta)) {
          const t = call.index ?? 0;
          // Calls come one after another: one is whole once the next starts, and its held end goes out before that start.
          if (call.id !== undefined) {
            const f = flushCalls(index, t);
            if (f.blocked) return fail(f.blocked);
            release(c, f.entries, before);
          }
          if (typeof call.function?.arguments !== 'string') continue;
          const e = args.push(callStream(index, t), call.function.arguments);
          if (e.blocked) return fail(e.blocked);
          calls.set(index, (calls.get(index) ?? new Set()).add(t));
          call.function.arguments = e.text;
        }
        // Reasoning comes before the answer: what is held of it goes out once the answer starts, not after it.
        if (source === 'delta' && c.delta!.content !== '') {
          for (const name of REASONING_FIELDS) {
            const r = name in side ? undefined : streams.get(`${name}:${index}`);
            if (r === undefined || !redactor.pending().includes(r)) continue;
            const held = redactor.flush(r);
            if (held.blocked) return fail(held.blocked);
            if (held.text !== '') side[name] = held.text;
          }
        }
        if (c.finish_reason) {
          const e = redactor.flush(index);
          if (e.blocked) return fail(e.blocked);
          out += e.text;
          for (const name of SIDE_FIELDS) {
            const r = streams.get(`${name}:${index}`);
            if (r === undefined) continue;
            const held = redactor.flush(r);
            if (held.blocked) return fail(held.blocked);
            if (held.text !== '' || name in side) side[name] = (side[name] ?? '') + held.text;
          }
          const f = flushCalls(index);
          if (f.blocked) return fail(f.blocked);
          release(c, f.entries, before);
        }
        if (source === 'delta') c.delta!.content = out;
        else if (source === 'text') c.text = out;
        else if (out !== '') c.delta = { ...c.delta, content: out };
        if (Object.keys(side).length > 0) c.delta = { ...c.delta, ...side };
      }
      const out = JSON.stringify(chunk);
      return before.length > 0 ? [JSON.stringify({ ...chunk, choices: before }), out] : out;
    },
    // A stream that ended with neither finish_reason nor [DONE] (a server that closes after its last chunk): what is
    // held goes out, scanned, as its last events, rather than never.
    eventsAtEnd() {
      if (ended) return [];
      const held = heldChat();
      return ended ? held : [...held, ...heldDeltas()];
    },
  };
}

/** @example sanitizeModelResponse('answer-guard', { filters: { secrets: { action: 'redact' } }, streamHoldback: 200 }, deps) */
export const sanitizeModelResponse: PolicyFactory = (name, spec) => {
  const s = sanitizeModelResponseSpec.parse(spec);
  const scanner = new Scanner(s.filters);
  const scanners: Scanners = { text: scanner, json: jsonTextScanner(scanner) };
  const classifier = s.classifier ? classifierCheck(s.classifier, SANITIZE_MODEL_RESPONSE_FAULTS.classifierUnavailable) : undefined;

  return {
    type: SANITIZE_MODEL_RESPONSE,
    name,
    get classifierFailures() {
      return classifier?.failures ?? 0;
    },
    respond(ctx: RequestContext, state: ApimState, status: number): ResponseFlow | undefined {
      // Embeddings carry no text: holding one whole answer for nothing to read failed those past the body limit.
      if (status < 200 || status >= 300 || ctx.operation === 'embeddings') return undefined;
      // The classifier never sees a stream: no cache may keep this answer to replay where the classifier would judge it.
      // (A stored response's read asks for no stream, yet vLLM replays a background response's events to
      // `GET /v1/responses/{id}?stream=true`.)
      if (classifier && (ctx.stream || (ctx.storedResponse && scanner.active))) state.answerUnjudged = true;
      if (!scanner.active && !classifier) return undefined;
      const whole: ResponseFlow = { body: (body) => sanitizeBody(body, scanners, classifier) };
      if (!scanner.active) return whole;
      // Both forms, whichever was asked for: the proxy takes `event` for an event stream and `body` for anything else,
      // and a model server may answer a stream request with JSON or stream to one that did not ask. With only the
      // form asked for, the other passed unread.
      return { ...streamFlow(ctx, scanners, s.streamHoldback, ctx.operation === 'responses' || ctx.storedResponse !== undefined), ...whole };
    },
  } satisfies Policy & { readonly classifierFailures: number };
};
