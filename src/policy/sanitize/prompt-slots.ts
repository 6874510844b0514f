// The places in a request body that hold prompt text a sanitizer reads and may rewrite: chat messages of the
// configured roles (string content or text parts), the completions prompt, the embeddings and responses input.
import type { OpenAIBody } from '../../gateway/openai-request.js';

export interface TextSlot {
  /** The current text (after set, the new one). */
  text: string;
  set(text: string): void;
}

type Part = { type?: string; text?: unknown };

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
type Item = { role?: unknown; content?: unknown };

function partSlots(parts: Part[], out: TextSlot[]): void {
  for (const p of parts) {
    if (p && typeof p.text === 'string') out.push(slot(p.text, (t) => (p.text = t)));
  }
}

/** Messages (or responses-API input items) of `roles`, each string or text part a slot. */
function messageSlots(items: Item[], roles: ReadonlySet<string>, out: TextSlot[]): void {
  for (const m of items) {
    if (!m || typeof m !== 'object' || !roles.has(String(m.role))) continue;
    if (typeof m.content === 'string') out.push(slot(m.content, (t) => (m.content = t)));
    else if (Array.isArray(m.content)) partSlots(m.content as Part[], out);
  }
}

function inputSlots(holder: Record<string, unknown>, key: string, roles: ReadonlySet<string>, out: TextSlot[]): void {
  const v = holder[key];
  if (typeof v === 'string') out.push(slot(v, (t) => (holder[key] = t)));
  else if (Array.isArray(v)) {
    v.forEach((x, i) => {
      if (typeof x === 'string') out.push(slot(x, (t) => (v[i] = t)));
    });
    messageSlots(v.filter((x): x is Item => typeof x === 'object' && x !== null), roles, out);
  }
}

export function promptSlots(body: OpenAIBody, roles: ReadonlySet<string>): TextSlot[] {
  const out: TextSlot[] = [];
  if (Array.isArray(body.messages)) messageSlots(body.messages, roles, out);
  inputSlots(body, 'prompt', roles, out);
  inputSlots(body, 'input', roles, out);
  return out;
}
