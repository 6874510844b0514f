// Message templates: text with `{variable}` references (Apigee's), compiled once into a render function.
import type { RequestContext } from '../gateway/context.js';
import type { ApimState } from './types.js';
import { compileVariable, variableSource, type Variable } from './variables.js';

export interface MessageTemplate {
  readonly text: string;
  /** Without references: it renders as its text for every request. */
  readonly literal: boolean;
  /**
   * It reads something of the request itself (its headers, query, client address, path, flow variables), not only the
   * caller's key and entitlement: it may render differently for two requests of one app.
   */
  readonly perRequest: boolean;
  /** The rendered text, and the references that had no value (rendered empty). */
  render(ctx: RequestContext, state: ApimState): { value: string; unresolved: string[] };
}

/** Variables whose value is the same for every request of one app: its key's and its entitlement's. */
const APP_WIDE = new Set(['key', 'entitlement']);

/** A variable name in braces; JSON such as `{"a":1}` in a template is text, not a reference. */
export const REFERENCE = /\{([A-Za-z_][\w.-]*)\}/g;

/**
 * compileTemplate('Bearer {kvm.token}') → template; a literal renders as itself at no cost. Each variable's value
 * passes through `encode` (e.g. encodeURIComponent for URLs).
 * @throws Error naming an unknown variable.
 */
export function compileTemplate(text: string, encode: (value: string) => string = (v) => v): MessageTemplate {
  const parts: (string | { ref: string; read: Variable })[] = [];
  let at = 0;
  for (const m of text.matchAll(REFERENCE)) {
    if (m.index > at) parts.push(text.slice(at, m.index));
    parts.push({ ref: m[1], read: compileVariable(m[1]) });
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push(text.slice(at));
  if (parts.every((p) => typeof p === 'string')) {
    const literal = { value: text, unresolved: [] as string[] };
    return { text, literal: true, perRequest: false, render: () => literal };
  }
  const perRequest = parts.some((p) => typeof p !== 'string' && !APP_WIDE.has(variableSource(p.ref)));
  return {
    text,
    literal: false,
    perRequest,
    render(ctx, state) {
      let value = '';
      const unresolved: string[] = [];
      for (const p of parts) {
        if (typeof p === 'string') value += p;
        else {
          const v = p.read(ctx, state);
          if (v === undefined) unresolved.push(p.ref);
          else value += encode(v);
        }
      }
      return { value, unresolved };
    },
  };
}
