// The callout's request compiled once from its spec: a URL template (values URL-encoded), header templates, and a
// JSON body whose strings are templates (values land inside JSON strings, so they cannot break its structure).
import type { ServiceCalloutSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { resolveHeaderSecret } from '../../secret-source.js';
import { compileTemplate, type Template } from '../../template.js';
import type { ApimState } from '../../types.js';

export interface BuiltRequest {
  method: string;
  /** Undefined when a variable of the URL is unset. */
  url: string | undefined;
  headers: Record<string, string>;
  body: string | undefined;
}

type BodyBuilder = (ctx: RequestContext, state: ApimState) => unknown;

function compileBody(value: unknown): BodyBuilder {
  if (typeof value === 'string') {
    const t = compileTemplate(value);
    return (ctx, state) => t(ctx, state) ?? '';
  }
  if (Array.isArray(value)) {
    const items = value.map(compileBody);
    return (ctx, state) => items.map((b) => b(ctx, state));
  }
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).map(([k, v]) => [k, compileBody(v)] as const);
    return (ctx, state) => Object.fromEntries(fields.map(([k, b]) => [k, b(ctx, state)]));
  }
  return () => value;
}

export function compileCalloutRequest(r: ServiceCalloutSpec['request']): (ctx: RequestContext, state: ApimState) => BuiltRequest {
  const url = compileTemplate(r.url, encodeURIComponent);
  // An {env} value is a credential, resolved once (an unset variable fails the configuration) and never a template.
  const headers: [string, Template][] = Object.entries(r.headers).map(([name, value]) => {
    if (typeof value === 'string') return [name.toLowerCase(), compileTemplate(value)];
    const secret = resolveHeaderSecret(value, `spec.request.headers.${name}`);
    return [name.toLowerCase(), () => secret];
  });
  const body = r.body === undefined ? null : compileBody(r.body);
  const method = r.method ?? (body ? 'POST' : 'GET');
  return (ctx, state) => {
    const out: Record<string, string> = {};
    for (const [name, template] of headers) {
      // A header whose variable is unset is left out rather than sent empty.
      const value = template(ctx, state);
      if (value !== undefined) out[name] = value;
    }
    if (body) out['content-type'] ??= 'application/json';
    return { method, url: url(ctx, state), headers: out, body: body ? JSON.stringify(body(ctx, state)) : undefined };
  };
}
