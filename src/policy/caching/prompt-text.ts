// The text of a request's prompt that semantic caches embed: the last user message, every user message, or the
// completions prompt; and a digest of everything else that shapes the answer (system prompt, history, tools).
import { hash } from 'node:crypto';
import type { OpenAIBody } from '../../gateway/openai-request.js';
import { canonicalJson } from './canonical-json.js';

export type UserPromptSource = 'lastUserMessage' | 'userMessages';

type Message = NonNullable<OpenAIBody['messages']>[number];

export function messageText(m: Message): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) return '';
  let out = '';
  for (const part of c) if (typeof part.text === 'string') out += (out ? '\n' : '') + part.text;
  return out;
}

/** Which messages hold the text that is embedded: the last user message, or every one. */
function embeddedIndexes(messages: readonly Message[], source: UserPromptSource): number[] {
  if (source === 'lastUserMessage') {
    for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return [i];
    return [];
  }
  return messages.flatMap((m, i) => (m.role === 'user' ? [i] : []));
}

/**
 * The prompt text, or undefined when the request has none (an empty prompt is never cached), or holds a batch of
 * completions prompts: one embedding of them all cannot tell which answer is which prompt's (["Paris is", "Rome is"]
 * matched "Paris is\nRome is" at 1.0, two choices served to one prompt, and would match the batch in the other order).
 */
export function userPrompt(body: OpenAIBody, source: UserPromptSource): string | undefined {
  const messages = body.messages;
  if (Array.isArray(messages)) return embeddedIndexes(messages, source).map((i) => messageText(messages[i])).join('\n') || undefined;
  const p = body.prompt;
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') return p[0] || undefined;
  return typeof p === 'string' ? p || undefined : undefined;
}

/**
 * A digest of what besides the prompt decides the answer: the other messages, tools, tool_choice, response_format
 * and n. Two requests with the same prompt under different system prompts must not share an answer.
 */
export function contextDigest(body: OpenAIBody, source: UserPromptSource): string {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const embedded = new Set(embeddedIndexes(messages, source));
  const rest = messages.filter((_, i) => !embedded.has(i));
  const text = canonicalJson({ rest, tools: body.tools, tool_choice: body.tool_choice, response_format: body.response_format, n: body.n });
  return hash('sha256', text, 'base64url').slice(0, 22);
}

/**
 * What shapes the answer rather than its meaning: the operation (a chat answer is no completions answer), the token
 * cap (an answer cut short at max_tokens: 1 was served to a request allowing 500), stop sequences, logprobs and echo
 * (an answer kept without them cannot serve a request that asked for them), n and best_of (one choice is not four),
 * and a completions suffix (fill-in-the-middle: the prompt's second half, which is not embedded). Part of the scope
 * whatever matchContext says.
 */
export function answerShape(operation: string | undefined, body: OpenAIBody): string {
  const shape = [body.max_tokens, body.max_completion_tokens, body.max_output_tokens, body.stop, body.logprobs, body.top_logprobs, body.n, body.best_of, body.echo, body.suffix];
  return `${operation ?? ''}\n${canonicalJson(shape)}`;
}

/**
 * A digest of what the embedded prompt messages hold besides text (images, audio, files), or '' when nothing: only
 * their text is embedded, so without this the same question about another picture would be a hit, the first
 * picture's answer served. Part of the scope whatever matchContext says.
 */
export function promptMediaDigest(body: OpenAIBody, source: UserPromptSource): string {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const embedded = new Set(embeddedIndexes(messages, source));
  const media: unknown[] = [];
  for (const i of embedded) {
    const content = messages[i].content;
    if (Array.isArray(content)) for (const part of content) if (typeof part.text !== 'string') media.push(part);
  }
  return media.length === 0 ? '' : hash('sha256', canonicalJson(media), 'base64url').slice(0, 22);
}
