// AssignMessage: removes, then sets, headers, query parameters and JSON body fields on the request before it goes
// upstream, or headers and JSON body fields on the answer; values are message templates (`{developer.app.name}`).
import { assignMessageSpec } from '../../../config/apim-kinds.js';
import { editQuery, type RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import { removePath, setPath } from '../../json-path.js';
import { compileTemplate, type MessageTemplate } from '../../message-template.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { isSuccess } from '../../../gateway/http-status.js';

export const ASSIGN_MESSAGE = 'assign-message';

export const ASSIGN_MESSAGE_FAULTS = {
  unresolvedVariable: 'steps.assignmessage.UnresolvedVariable',
} as const;

interface FieldValue {
  segments: string[];
  /** A template for strings; any other JSON value is set as given. */
  value: MessageTemplate | { literal: unknown };
}

const isTemplate = (v: FieldValue['value']): v is MessageTemplate => 'render' in v;

/**
 * @example assignMessage('tag-tenant', { set: { headers: [{ name: 'x-tenant', value: '{developer.app.name}' }],
 *   jsonFields: [{ path: 'user', value: '{developer.email}' }] } }, deps)
 */
export const assignMessage: PolicyFactory = (name, spec) => {
  const s = assignMessageSpec.parse(spec);
  const strict = !s.ignoreUnresolvedVariables;
  const setHeaders = s.set.headers.map((h) => ({ name: h.name, value: compileTemplate(h.value) }));
  const setQuery = s.set.queryParams.map((q) => ({ name: q.name, value: compileTemplate(q.value) }));
  const removeFields = s.remove.jsonFields.map((f) => f.path.split('.'));
  const setFields: FieldValue[] = s.set.jsonFields.map((f) => ({
    segments: f.path.split('.'),
    value: typeof f.value === 'string' ? compileTemplate(f.value) : { literal: f.value ?? null },
  }));
  const removeHeaders = s.remove.headers.map((h) => h.name);
  const removeQuery = s.remove.queryParams.map((q) => q.name);
  const editsQuery = removeQuery.length + setQuery.length > 0;
  const editsBody = removeFields.length + setFields.length > 0;

  /** The rendered value; on the request, an unresolved variable faults unless ignoreUnresolvedVariables. */
  const render = (t: MessageTemplate, ctx: RequestContext, state: ApimState, mayFault: boolean): string => {
    const { value, unresolved } = t.render(ctx, state);
    if (mayFault && strict && unresolved.length > 0) {
      throw policyFault(500, ASSIGN_MESSAGE_FAULTS.unresolvedVariable, `Unresolved variable : ${unresolved[0]}`);
    }
    return value;
  };

  const editJson = (root: Record<string, unknown>, ctx: RequestContext, state: ApimState, mayFault: boolean): void => {
    for (const path of removeFields) removePath(root, path);
    for (const f of setFields) setPath(root, f.segments, isTemplate(f.value) ? render(f.value, ctx, state, mayFault) : structuredClone(f.value.literal));
  };

  // Header changes reach every cache hit anew; a body rendered from the key's variables is one app's (a developer's
  // email), one rendered from the request's (a header, the client address) one request's.
  const templates = setFields.flatMap((f) => (isTemplate(f.value) && !f.value.literal ? [f.value] : []));
  const answerEdits = !editsBody ? 'none' : templates.some((t) => t.perRequest) ? 'perRequest' : templates.length > 0 ? 'perApp' : undefined;
  const policy: Policy = { type: ASSIGN_MESSAGE, name, ...(s.assignTo === 'response' && answerEdits && { answerEdits }) };
  if (s.assignTo === 'request') {
    policy.admit = (ctx, state) => {
      if (removeHeaders.length + setHeaders.length > 0) {
        // Rendered before any change, so a header removed here can still be copied into another (a rename).
        const values = setHeaders.map((h) => [h.name, render(h.value, ctx, state, true)] as const);
        // The request later policies read (request.header.*, conditions, scripts) is the one sent upstream, as in
        // Apigee: a spike arrest keyed on a header this policy overwrote counted the client's value instead.
        const upstream = (ctx.upstreamHeaders ??= {});
        for (const h of removeHeaders) {
          delete ctx.headers[h];
          upstream[h] = null;
        }
        for (const [h, v] of values) {
          ctx.headers[h] = v;
          upstream[h] = v;
        }
      }
      if (editsQuery) {
        editQuery(ctx, (params) => {
          for (const p of removeQuery) params.delete(p);
          for (const p of setQuery) params.set(p.name, render(p.value, ctx, state, true));
        });
      }
      if (editsBody && ctx.body) {
        editJson(ctx.body as unknown as Record<string, unknown>, ctx, state, true);
        ctx.bodyChanged = true;
      }
    };
  } else {
    // The answer has started: nothing can fault any more, so unresolved variables render empty.
    policy.respond = (ctx, state, status): ResponseFlow => {
      const headers = setHeaders.map((h) => [h.name, render(h.value, ctx, state, false)] as const);
      const flow: ResponseFlow = {
        headers: (_status, out) => {
          for (const h of removeHeaders) delete out[h];
          for (const [h, v] of headers) out[h] = v;
        },
      };
      if (editsBody && isSuccess(status)) {
        flow.body = (body) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body.toString('utf8'));
          } catch {
            return body;
          }
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return body;
          editJson(parsed as Record<string, unknown>, ctx, state, false);
          return Buffer.from(JSON.stringify(parsed));
        };
      }
      return flow;
    };
  }
  return policy satisfies Policy;
};
