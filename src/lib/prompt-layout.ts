// A chat prompt laid out as a model server's chat template lays it out ahead of the answer, in outline: what its KV
// cache holds, block by block. The gateway's prefix-cache scorer hashes it and the simulator's KV cache holds its
// tokens, so the prefix affinity the gateway sees is the one the simulator caches, and follows what an engine caches.
import { createHash } from 'node:crypto';
import { toolCallsText, type ChatMessage } from './tokenizer.js';

/**
 * Ends each part of the layout, followed by the part's length: where one message ends is then part of the text
 * (`[system "S\nuser: hi"]` and `[system "S"], [user "hi"]` lay out differently), as a template's end-of-turn token
 * makes it. At the end rather than the start, so that two messages opening alike (a long document, then different
 * questions) still share that prefix.
 */
const PART_END = '\u001e';

/**
 * `tools` (the request's tool definitions, as sent) first, as chat templates render them (vLLM's, from the first
 * token on), then the messages in order. Two requests share a prefix here exactly as far as their layouts agree: the
 * same tool list and system prompt before different questions share all of that; the same messages after different
 * tools, or with different images, share nothing. `tool_choice` is left out: templates do not render it (vLLM applies
 * it to decoding). With `readChars`, the layout is the same up to there and as long, for a reader of only that many.
 */
export function promptLayout(messages: readonly ChatMessage[], tools?: unknown, readChars = Infinity): string {
  let out = toolsLayout(tools);
  for (const m of messages) out += part(m.role, contentLayout(m.content, out.length + m.role.length + 2, readChars) + toolCallsText(m.tool_calls));
  return out;
}

/** The tools part of promptLayout: their JSON as the client sent it (keys in its order, as a template's tojson keeps them); empty without tools. */
export function toolsLayout(tools: unknown): string {
  return Array.isArray(tools) && tools.length > 0 ? part('tools', JSON.stringify(tools)) : '';
}

function part(head: string, body: string): string {
  return `${head}: ${body}${PART_END}${body.length}\n`;
}

/**
 * Text parts as their text (a content-part array reads as the equal string), every other part (an image, audio, a
 * file) as a digest of its content: the engine's prefix ends at an image that differs, and goes on past one that
 * does not. The digest covers the whole part (a URL or inline data, and options such as an image's `detail`).
 */
function contentLayout(content: ChatMessage['content'] | undefined, at: number, readChars: number): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const p of content) {
    if (p === null || typeof p !== 'object') continue;
    if (typeof p.text === 'string') out += p.text;
    // Past what the reader reads, a digest's place is all that counts: a megabyte image is not serialized and hashed
    // on every request for characters nobody reads.
    else out += at + out.length < readChars ? `<${createHash('sha256').update(JSON.stringify(p)).digest('base64url').slice(0, 22)}>` : UNREAD_DIGEST;
  }
  return out;
}

/** A digest's place past the characters read: as long as one. */
const UNREAD_DIGEST = `<${'-'.repeat(22)}>`;
