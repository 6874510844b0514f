// OASValidation: checks each request (and, on request, each non-streamed JSON answer) against an OpenAPI 3 document:
// the path and method, path, query and header parameters, and the JSON body schema, naming the failing field.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { oasValidationSpec } from '../../../config/apim-kinds.js';
import { queryOf, type RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { Policy, PolicyFactory } from '../../types.js';
import { compileDocument, loadDocument, type CompiledOperation, type CompiledParameter, type CompiledPath } from './oas-document.js';
import { isJsonMediaType } from '../../../gateway/media-type.js';
import { jsonText } from '../../../lib/json-text.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../../lib/json-depth.js';

export const OAS_VALIDATION = 'oas-validation';

export const OAS_VALIDATION_FAULTS = {
  failed: 'steps.oasvalidation.Failed',
} as const;

/** "/messages/0/role: must be equal to one of the allowed values" for the first few errors. */
function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 3)
    .map((e) => {
      const extra = (e.params as { additionalProperty?: string }).additionalProperty;
      return `${e.instancePath || '/'}: ${e.message ?? 'is invalid'}${extra ? ` (${extra})` : ''}`;
    })
    .join('; ');
}

/** describe() of a parameter, validated as `{v: value}`: "must be integer", "item 1: must be integer". */
function parameterErrors(errors: ErrorObject[] | null | undefined): string {
  return describe(errors).replace(/(^|; )\/v: /g, '$1').replace(/(^|; )\/v\//g, '$1item ');
}

/**
 * What `describe` makes of `validate`'s errors on `value`, or undefined when it passes. The errors are dropped from
 * the validator, which every request to the operation shares: they would stay on it until its next use.
 */
function failures(validate: ValidateFunction, value: unknown, show = describe): string | undefined {
  if (validate(value)) return undefined;
  const text = show(validate.errors);
  validate.errors = null;
  return text;
}

/**
 * `raw` parsed, or why it cannot be validated: not JSON, or nested deeper than the gateway takes (ajv walks the value
 * by recursion: a body 200,000 levels deep overflowed the stack, a 500 for a bad request).
 */
function parsedJson(raw: Buffer): { value: unknown } | 'not JSON' | 'too deep' {
  let value: unknown;
  try {
    value = JSON.parse(jsonText(raw));
  } catch {
    return 'not JSON';
  }
  return nestsDeeperThan(raw, MAX_JSON_DEPTH) ? 'too deep' : { value };
}
const TOO_DEEP = `nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`;

/** The parameter's value as its schema reads it: an array's items, one text otherwise; undefined when it is absent. */
function valueOf(p: CompiledParameter, ctx: RequestContext, query: URLSearchParams, path: Map<string, string>): string | string[] | undefined {
  if (p.in === 'query') {
    const all = query.getAll(p.name);
    if (all.length === 0) return undefined;
    if (p.array === 'repeated') return all;
    return p.array ? all[0].split(p.array) : all[0];
  }
  const raw = p.in === 'path' ? path.get(p.name) : ctx.headers[p.name];
  const one = Array.isArray(raw) ? raw.join(', ') : raw;
  return one !== undefined && p.array ? one.split(',').map((item) => item.trim()) : one;
}

/** The path's parameter values by name, percent-decoded; undefined when one is not valid percent-encoding. */
function pathValues(path: CompiledPath, ctx: RequestContext): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const values = path.pattern.values(ctx.path);
  try {
    path.pattern.names.forEach((name, i) => out.set(name, decodeURIComponent(values[i])));
  } catch {
    return undefined;
  }
  return out;
}

function operationOf(paths: readonly CompiledPath[], ctx: RequestContext): { path?: CompiledPath; op?: CompiledOperation } {
  const path = paths.find((p) => p.pattern.test(ctx.path));
  return { path, op: path?.operations.get(ctx.method) };
}

/**
 * @example oasValidation('chat-contract', { source: 'specs/chat.yaml', validateResponses: true }, deps)
 */
export const oasValidation: PolicyFactory = (name, spec) => {
  const s = oasValidationSpec.parse(spec);
  const paths = compileDocument(loadDocument(s.openApi, s.source));
  const fail = (status: number, reason: string) => policyFault(status, OAS_VALIDATION_FAULTS.failed, `OASValidation ${name} failed with reason: ${reason}`);

  const policy: Policy = {
    type: OAS_VALIDATION,
    name,
    admit(ctx) {
      const { path, op } = operationOf(paths, ctx);
      if (!path) throw fail(400, `no API path matches ${ctx.path}`);
      if (!op) throw fail(400, `${ctx.method} is not allowed on ${ctx.path}`);
      const query = queryOf(ctx.url);
      const pathParams = op.parameters.some((p) => p.in === 'path') ? pathValues(path, ctx) : new Map<string, string>();
      if (!pathParams) throw fail(400, `the path ${ctx.path} is not valid percent-encoding`);
      for (const p of op.parameters) {
        // Which of two values counts differs from one reader to another: checking one would let the other through.
        if (p.in === 'query' && p.array !== 'repeated' && query.getAll(p.name).length > 1) throw fail(400, `query parameter "${p.name}" must not be given more than once`);
        const value = valueOf(p, ctx, query, pathParams);
        if (value === undefined) {
          if (p.required) throw fail(400, `${p.in} parameter "${p.name}" is required`);
          continue;
        }
        const failed = p.validate ? failures(p.validate, { v: value }, parameterErrors) : undefined;
        if (failed !== undefined) throw fail(400, `${p.in} parameter "${p.name}" ${failed}`);
      }
      // An OpenAI operation's body comes parsed, its depth checked (openai-request.ts); an HTTPRoute's is read here.
      let body: unknown = ctx.body;
      if (body === undefined && ctx.rawBody && ctx.rawBody.length > 0) {
        const parsed = parsedJson(ctx.rawBody);
        if (parsed === 'not JSON') throw fail(400, 'the request body is not JSON');
        if (parsed === 'too deep') throw fail(400, `the request body ${TOO_DEEP}`);
        body = parsed.value;
      }
      if (body === undefined) {
        if (op.bodyRequired) throw fail(400, 'a request body is required');
        return;
      }
      const failed = op.body ? failures(op.body, body) : undefined;
      if (failed !== undefined) throw fail(400, `request body ${failed}`);
    },
  };
  if (s.validateResponses) {
    policy.respond = (ctx, _state, status) => {
      const { op } = operationOf(paths, ctx);
      const validate = op && (op.responses.get(String(status)) ?? op.responses.get(`${String(status)[0]}XX`) ?? op.responses.get('DEFAULT'));
      if (!validate) return undefined;
      // Only JSON answers have a schema here: a text/plain 503 of the model server's goes to the client as it is.
      let json = false;
      return {
        headers(_status, headers) {
          json = isJsonMediaType(headers['content-type']);
        },
        body(answer) {
          if (!json) return answer;
          const parsed = parsedJson(answer);
          if (parsed === 'not JSON') throw fail(502, `the ${status} answer is not JSON`);
          if (parsed === 'too deep') throw fail(502, `the ${status} answer ${TOO_DEEP}`);
          const failed = failures(validate, parsed.value);
          if (failed !== undefined) throw fail(502, `the ${status} answer ${failed}`);
          return answer;
        },
      };
    };
  }
  return policy satisfies Policy;
};
