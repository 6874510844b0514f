// The places in a request body that hold prompt text a sanitizer reads and may rewrite: chat messages of the
// configured roles (string content, or text parts read as one text), the completions prompt and suffix, the
// embeddings and responses input; the URLs that image and file parts point the model server at; and whether the
// prompt is token ids, which cannot be read.
import type { OpenAIBody } from '../../gateway/openai-request.js';

export interface TextSlot {
  /** The current text (after set, the new one). */
  text: string;
  set(text: string): void;
}

/** One text judged whole. */
export interface PromptText {
  /**
   * One slot, or a message's text parts: the model reads those joined (text-parts.ts), so judged one by one, a phrase
   * split across two passed.
   */
  parts: TextSlot[];
  /** A URL the model server fetches (an image or file part's), judged by the maliciousUri filter alone. */
  url: boolean;
}

export interface PromptSlots {
  texts: PromptText[];
  /** What holds a prompt no filter can read: `prompt`/`input` of token ids, or vLLM's `prompt_embeds`. */
  unreadable?: 'token ids' | 'embeddings';
}

type Part = Record<string, unknown>;
type Item = { role?: unknown; content?: unknown };

function slot(text: string, write: (t: string) => void): TextSlot {
  const s: TextSlot = {
    text,
    set(t) {
      s.text = t;
      write(t);
    },
  };
  return s;
}

const one = (s: TextSlot): PromptText => ({ parts: [s], url: false });

/**
 * Where parts hold a URL: chat's `image_url: {url}` (vLLM's `audio_url`, `video_url` alike, and its short forms
 * without `type`: `{"audio_url": "<url>"}`, `{"video_url": {"url": ...}}`), the responses API's `input_image`
 * `image_url` and `input_file` `file_url`.
 */
const MEDIA_KEYS = ['image_url', 'audio_url', 'video_url', 'file_url'];
const URL_KEYS = ['url', ...MEDIA_KEYS];
/** Inline data: nothing is fetched. */
const DATA_URL = /^data:/i;

/**
 * Every URL a part holds, on it or under its media keys: which one a server fetches depends on the part's type or,
 * without one, on vLLM's order of keys; the first found alone judged `url` in `{"type": "input_image", "url": <good>,
 * "image_url": <bad>}`, and the server fetched the other.
 */
function urlSlots(part: Part, out: PromptText[]): void {
  const holders = new Set([part, part[String(part.type)], ...MEDIA_KEYS.map((k) => part[k])]);
  for (const holder of holders) {
    if (!holder || typeof holder !== 'object') continue;
    const h = holder as Part;
    for (const key of URL_KEYS) {
      const url = h[key];
      if (typeof url === 'string' && !DATA_URL.test(url)) out.push({ parts: [slot(url, (t) => (h[key] = t))], url: true });
    }
  }
}

/** Content parts: the text parts as one text, and each URL part's URL. */
function partTexts(parts: unknown[], out: PromptText[]): void {
  const texts: TextSlot[] = [];
  for (const p of parts) {
    if (!p || typeof p !== 'object') continue;
    const part = p as Part;
    if (typeof part.text === 'string') texts.push(slot(part.text, (t) => (part.text = t)));
    urlSlots(part, out);
  }
  if (texts.length > 0) out.push({ parts: texts, url: false });
}

/** The roles the OpenAI API defines besides `user`; any other (`human`, `user ` with a space, none) may reach the model as a user's words. */
const NOT_USER = new Set(['system', 'developer', 'assistant', 'tool', 'function']);

/**
 * Whether a message of this role is checked: a listed role, matched in any case and without surrounding spaces; and
 * a role the API does not define counts as `user`, so a client cannot pass its text unchecked by naming a role of its own.
 */
function scanned(role: unknown, roles: ReadonlySet<string>): boolean {
  const name = typeof role === 'string' ? role.trim().toLowerCase() : 'user';
  return roles.has(name) || (!NOT_USER.has(name) && roles.has('user'));
}

/**
 * Messages (or responses-API input items) of `roles` (lower case; a role is matched in any case, as some servers read
 * `User` as a user), string or content parts. A responses-API tool result (`function_call_output`) is the `tool`
 * role's.
 */
function messageTexts(items: Item[], roles: ReadonlySet<string>, out: PromptText[]): void {
  for (const m of items) {
    if (!m || typeof m !== 'object') continue;
    const output = m as { type?: unknown; output?: unknown };
    if (output.type === 'function_call_output') {
      if (!roles.has('tool')) continue;
      if (typeof output.output === 'string') out.push(one(slot(output.output, (t) => (output.output = t))));
      else if (Array.isArray(output.output)) partTexts(output.output, out);
      continue;
    }
    if (!scanned(m.role, roles)) continue;
    if (typeof m.content === 'string') out.push(one(slot(m.content, (t) => (m.content = t))));
    else if (Array.isArray(m.content)) partTexts(m.content, out);
  }
}

/** @returns whether the field holds token ids. */
function inputTexts(holder: Record<string, unknown>, key: string, roles: ReadonlySet<string>, out: PromptText[]): boolean {
  const v = holder[key];
  if (typeof v === 'string') out.push(one(slot(v, (t) => (holder[key] = t))));
  if (!Array.isArray(v)) return false;
  v.forEach((x, i) => {
    if (typeof x === 'string') out.push(one(slot(x, (t) => (v[i] = t))));
  });
  messageTexts(v.filter((x): x is Item => typeof x === 'object' && x !== null), roles, out);
  return v.some((x) => typeof x === 'number' || Array.isArray(x));
}

export function promptSlots(body: OpenAIBody, roles: ReadonlySet<string>): PromptSlots {
  const texts: PromptText[] = [];
  if (Array.isArray(body.messages)) messageTexts(body.messages, roles, texts);
  const holder = body as Record<string, unknown>;
  // The responses API's system prompt.
  if (typeof holder.instructions === 'string' && (roles.has('system') || roles.has('developer'))) {
    texts.push(one(slot(holder.instructions, (t) => (holder.instructions = t))));
  }
  const promptIds = inputTexts(holder, 'prompt', roles, texts);
  // What a completion fills in before: the prompt's second half.
  if (typeof holder.suffix === 'string') texts.push(one(slot(holder.suffix, (t) => (holder.suffix = t))));
  const inputIds = inputTexts(holder, 'input', roles, texts);
  const unreadable = promptIds || inputIds ? 'token ids' : holder.prompt_embeds != null ? 'embeddings' : undefined;
  return unreadable ? { texts, unreadable } : { texts };
}
