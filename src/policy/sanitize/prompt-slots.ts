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
 * `User` as a user), each string or text part a slot. A responses-API tool result (`function_call_output`) is the
 * `tool` role's.
 */
function messageSlots(items: Item[], roles: ReadonlySet<string>, out: TextSlot[]): void {
  for (const m of items) {
    if (!m || typeof m !== 'object') continue;
    const output = m as { type?: unknown; output?: unknown };
    if (output.type === 'function_call_output') {
      if (roles.has('tool') && typeof output.output === 'string') out.push(slot(output.output, (t) => (output.output = t)));
      continue;
    }
    if (!scanned(m.role, roles)) continue;
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
  // The responses API's system prompt.
  const holder = body as Record<string, unknown>;
  if (typeof holder.instructions === 'string' && (roles.has('system') || roles.has('developer'))) {
    out.push(slot(holder.instructions, (t) => (holder.instructions = t)));
  }
  inputSlots(body, 'prompt', roles, out);
  inputSlots(body, 'input', roles, out);
  return out;
}
