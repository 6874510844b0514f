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
export const loadTokenizer: () => Gpt = lazyRequire<Gpt>('gpt-tokenizer');

/** 4 Mi characters per generation: about 16 MiB of strings at most, thousands of system prompts. */
const counts = new TokenCountCache((text) => loadTokenizer().countTokens(text), 4 * 1024 * 1024);

export function countTextTokens(text: string): number {
  return text.length === 0 ? 0 : counts.count(text);
}

export function encodeText(text: string): number[] {
  return loadTokenizer().encode(text);
}

export function decodeTokens(tokens: number[]): string {
  return loadTokenizer().decode(tokens);
}

type ContentPart = { type?: string; text?: string };
export type ChatMessage = { role: string; content: string | ContentPart[] | null };

/** The text of a chat message's content: a string, or the text parts of a content-part array. */
export function messageText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) if (part && typeof part.text === 'string') out += part.text;
  return out;
}

/** One message as tollgate serializes it: "<role>: <text>\n". */
function serializeMessage(m: ChatMessage): string {
  return `${m.role}: ${messageText(m.content)}\n`;
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
 * each message ends with a newline and the tokenizer never merges a newline with the role that follows it.
 */
export function countChatTokens(messages: ChatMessage[]): number {
  let n = 3 * messages.length;
  for (const m of messages) n += countTextTokens(serializeMessage(m));
  return n;
}
