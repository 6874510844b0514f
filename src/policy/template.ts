// Message templates that must resolve whole: the text with every `{variable}` filled in, or undefined when one is
// unset (a callout URL or a signed claim must not go out with a hole in it). Built on message-template.ts.
import type { RequestContext } from '../gateway/context.js';
import { REFERENCE, compileTemplate as compileMessageTemplate } from './message-template.js';
import type { ApimState } from './types.js';

/** A compiled template: the text, or undefined when one of its variables is unset. */
export type Template = (ctx: RequestContext, state: ApimState) => string | undefined;

/**
 * compileTemplate('https://users/{client_id}/tier', encodeURIComponent) — each value passes through `encode`.
 * @throws on an unknown variable name (a config error).
 */
export function compileTemplate(text: string, encode: (value: string) => string = (v) => v): Template {
  const template = compileMessageTemplate(text, encode);
  return (ctx, state) => {
    const { value, unresolved } = template.render(ctx, state);
    return unresolved.length === 0 ? value : undefined;
  };
}

/** Whether the text holds any `{variable}`. */
export function isTemplate(text: string): boolean {
  return new RegExp(REFERENCE.source).test(text);
}
