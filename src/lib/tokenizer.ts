// Token counting shared by the gateway (quotas, estimates) and the simulator (usage), so both agree on counts.
// gpt-tokenizer's default encoding (o200k_base) stands in for "the model's tokenizer" of self-hosted models.
import { lazyRequire } from './lazy-require.js';
import type * as GptTokenizer from 'gpt-tokenizer';
import { TokenCountCache } from './token-count-cache.js';

type Gpt = typeof GptTokenizer;

/**
 * gpt-tokenizer's tables take ~200 ms to load, most of a gateway's start: they are loaded when something first needs
 * tokens (policies that count them call this when compiled, so no request waits for it), not by every gateway.
 */
const loadGpt = lazyRequire<Gpt>('gpt-tokenizer');

/**
 * gpt-tokenizer remembers the tokens of every word it had to merge, 100,000 of them by default and with no bound on
 * their size: words cut at MAX_RUN characters hold up to ~4.8 KB each, so one client sending random CJK text or base64
 * grew a gateway's heap by ~480 MB, for good. Repeated prompts are what the gateway's own TokenCountCache is for;
 * this keeps the library's to ~20 MB at worst.
 */
export const MERGE_CACHE_ENTRIES = 4096;

let tokenizer: Gpt | undefined;

export function loadTokenizer(): Gpt {
  if (tokenizer) return tokenizer;
  tokenizer = loadGpt();
  tokenizer.setMergeCacheSize(MERGE_CACHE_ENTRIES);
  return tokenizer;
}

/**
 * gpt-tokenizer merges each pre-token (a run of letters, of punctuation or of spaces) in time that grows with the
 * square of its length: 20,000 Chinese characters (written without spaces) took 1.2 s to count and a 160,000-letter
 * "word" 11 s, on the event loop of the gateway or the simulator. Runs longer than this are cut into pieces of this
 * length, tokenized one by one: linear time (10 MiB of one letter in well under a second), and the very same tokens
 * for text without such runs. A cut can cost a merge, so over a cut run the count may differ by a token per cut;
 * the gateway and the simulator cut alike, so they still agree.
 */
export const MAX_RUN = 256;

function isSpace(c: number): boolean {
  return c <= 32 || c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** The text in pieces, none holding a run of spaces or of other characters longer than MAX_RUN; most texts are one piece. */
export function tokenizerPieces(text: string): string[] {
  if (text.length <= MAX_RUN) return [text];
  const pieces: string[] = [];
  let from = 0;
  let runStart = 0;
  let runSpace = isSpace(text.charCodeAt(0));
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = isSpace(c);
    if (space !== runSpace) {
      runSpace = space;
      runStart = i;
    } else if (i - runStart >= MAX_RUN && !(c >= 0xdc00 && c <= 0xdfff)) {
      // Not between the halves of a surrogate pair: the cut waits one character.
      pieces.push(text.slice(from, i));
      from = runStart = i;
    }
  }
  pieces.push(text.slice(from));
  return pieces;
}

/**
 * Client text is text: a special token's spelling (`<|endoftext|>`) in a prompt is counted as its characters, as a
 * served model's chat template does with user content, instead of the tokenizer's default of throwing (a 500).
 */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

function countPieces(text: string): number {
  const pieces = tokenizerPieces(text);
  const gpt = loadTokenizer();
  if (pieces.length === 1) return gpt.countTokens(text, PLAIN_TEXT);
  let n = 0;
  for (const piece of pieces) n += gpt.countTokens(piece, PLAIN_TEXT);
  return n;
}

/** 4 Mi characters per generation: about 16 MiB of strings at most, thousands of system prompts. */
const counts = new TokenCountCache(4 * 1024 * 1024);

/**
 * The text's tokens. With a `budget`, counting stops once past it and the answer is only some number above it: a
 * prompt a quota must refuse costs the budget's worth of counting, not its own. Any answer within the budget is the
 * exact count (and is kept). Texts of more than 64 Ki characters are best counted off the event loop: countWalk.
 */
export function countTextTokens(text: string, budget = Infinity): number {
  const known = knownTextTokens(text, budget);
  if (known !== undefined) return known;
  const n = countTextTokensUncached(text, budget);
  keepTextTokens(text, budget, n);
  return n;
}

/** countTextTokens's answer when it takes no counting (an empty text, no budget left, a text counted lately). */
export function knownTextTokens(text: string, budget = Infinity): number | undefined {
  if (text.length === 0) return 0;
  // Text has a token at least: with no budget left it is over at once.
  if (budget < 1) return budget + 1;
  const n = counts.get(text);
  return n === undefined || n <= budget ? n : budget + 1;
}

/** Keeps `n`, countTextTokens's answer for the text with `budget`, when it is the exact count (within the budget). */
export function keepTextTokens(text: string, budget: number, n: number): void {
  if (n <= budget) counts.set(text, n);
}

/** countTextTokens's answer, counted now: the token-count thread's, whose answers the gateway keeps. */
export function countTextTokensUncached(text: string, budget = Infinity): number {
  // A token is at least one UTF-8 byte: a text of no more bytes than the budget is counted whole.
  return text.length * 3 <= budget || Buffer.byteLength(text) <= budget ? countPieces(text) : countWithin(text, budget);
}

/** The same count as countPieces, or budget + 1 as soon as it passes the budget. */
function countWithin(text: string, budget: number): number {
  const gpt = loadTokenizer();
  let n = 0;
  for (const piece of tokenizerPieces(text)) {
    const within = gpt.isWithinTokenLimit(piece, budget - n, PLAIN_TEXT);
    if (within === false) return budget + 1;
    n += within;
  }
  return n;
}

/**
 * A walk over a prompt's texts that sums their tokens: it yields each text with the budget left for it, is given
 * back countTextTokens's answer, and returns the total. The walk is written once; countWalkHere counts its texts
 * on the spot, countWalk (token-count-thread.ts) counts the long ones off the event loop.
 */
export type CountWalk = Generator<{ text: string; budget: number }, number, number>;

function countWalkHere(walk: CountWalk): number {
  let step = walk.next();
  while (!step.done) step = walk.next(countTextTokens(step.value.text, step.value.budget));
  return step.value;
}

export function encodeText(text: string): number[] {
  const pieces = tokenizerPieces(text);
  const gpt = loadTokenizer();
  if (pieces.length === 1) return gpt.encode(text, PLAIN_TEXT);
  const tokens: number[] = [];
  for (const piece of pieces) for (const t of gpt.encode(piece, PLAIN_TEXT)) tokens.push(t);
  return tokens;
}

export function decodeTokens(tokens: number[]): string {
  return loadTokenizer().decode(tokens);
}

type ContentPart = { type?: string; text?: string };
/** `tool_calls`: an assistant message's calls, as a client sends them back (not validated: read defensively). */
export type ChatMessage = { role: string; content: string | ContentPart[] | null; tool_calls?: unknown };

/** The text of a chat message's content: a string, or the text parts of a content-part array. */
export function messageText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) if (part && typeof part.text === 'string') out += part.text;
  return out;
}

/**
 * An assistant message's tool calls as text: ` name(arguments)` each. A model server's chat template renders them into
 * the prompt (they are tokens it counts, and a prefix it caches); counted as nothing, a conversation of tool calls with
 * large arguments was reserved for far less than it used.
 */
export function toolCallsText(calls: unknown): string {
  if (!Array.isArray(calls)) return '';
  let out = '';
  for (const call of calls) {
    const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (fn === null || typeof fn !== 'object') continue;
    out += ` ${typeof fn.name === 'string' ? fn.name : ''}(${typeof fn.arguments === 'string' ? fn.arguments : ''})`;
  }
  return out;
}

/** One message as tollgate serializes it: "<role>: <text>[ <tool>(<arguments>)...]\n". */
function serializeMessage(m: ChatMessage): string {
  return `${m.role}: ${messageText(m.content)}${toolCallsText(m.tool_calls)}\n`;
}

/**
 * The prompt serialized the way tollgate sees it for token counts and prefix hashing: its messages in order.
 * Completions prompts are used as they are.
 */
export function serializeMessages(messages: ChatMessage[]): string {
  let out = '';
  for (const m of messages) out += serializeMessage(m);
  return out;
}

/**
 * Chat token count: the serialized prompt plus 3 tokens per message of framing (OpenAI's accounting). Counted message
 * by message, so a repeated system prompt is counted once: the same total as counting the whole serialization, since
 * each message ends with a newline and the tokenizer never merges a newline with the role that follows it. With a
 * `budget`, as countTextTokens: past it, some number above it.
 */
export function countChatTokens(messages: ChatMessage[], budget = Infinity): number {
  return countWalkHere(chatWalk(messages, budget));
}

/** countChatTokens as a walk. */
export function* chatWalk(messages: ChatMessage[], budget: number): CountWalk {
  let n = 3 * messages.length;
  for (const m of messages) {
    if (n > budget) break;
    n += yield { text: serializeMessage(m), budget: budget - n };
  }
  return n;
}
