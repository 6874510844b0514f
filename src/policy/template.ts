// Message templates (Apigee's `{variable}` syntax) compiled once: literal text with request variables filled in.
import type { RequestContext } from '../gateway/context.js';
import type { ApimState } from './types.js';
import { compileVariable, type Variable } from './variables.js';

/** A compiled template: the text, or undefined when one of its variables is unset. */
export type Template = (ctx: RequestContext, state: ApimState) => string | undefined;

const PLACEHOLDER = /\{([A-Za-z_][\w.-]*)\}/g;

/**
 * compileTemplate('https://users/{client_id}/tier', encodeURIComponent) — each value passes through `encode`.
 * @throws on an unknown variable name (a config error).
 */
export function compileTemplate(text: string, encode: (value: string) => string = (v) => v): Template {
  const literals: string[] = [];
  const variables: Variable[] = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    literals.push(text.slice(last, m.index));
    variables.push(compileVariable(m[1]));
    last = m.index + m[0].length;
  }
  if (variables.length === 0) return () => text;
  const tail = text.slice(last);
  return (ctx, state) => {
    let out = '';
    for (let i = 0; i < variables.length; i++) {
      const value = variables[i](ctx, state);
      if (value === undefined) return undefined;
      out += literals[i] + encode(value);
    }
    return out + tail;
  };
}

/** Whether the text holds any `{variable}`. */
export function isTemplate(text: string): boolean {
  return new RegExp(PLACEHOLDER.source).test(text);
}
