// OASValidation: checks each request (and, on request, each non-streamed JSON answer) against an OpenAPI 3 document:
// the path and method, required query and header parameters, and the JSON body schema, naming the failing field.
import type { ErrorObject } from 'ajv';
import { oasValidationSpec } from '../../../config/apim-kinds.js';
import { queryOf, type RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { Policy, PolicyFactory } from '../../types.js';
import { compileDocument, loadDocument, type CompiledOperation, type CompiledPath } from './oas-document.js';

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
      for (const p of op.parameters) {
        const raw = p.in === 'query' ? (query.get(p.name) ?? undefined) : ctx.headers[p.name];
        const value = Array.isArray(raw) ? raw[0] : raw;
        if (value === undefined) {
          if (p.required) throw fail(400, `${p.in} parameter "${p.name}" is required`);
          continue;
        }
        if (p.validate && !p.validate({ v: value })) throw fail(400, `${p.in} parameter "${p.name}" ${describe(p.validate.errors).replace(/^\/v: /, '')}`);
      }
      let body: unknown = ctx.body;
      if (body === undefined && ctx.rawBody && ctx.rawBody.length > 0) {
        try {
          body = JSON.parse(ctx.rawBody.toString('utf8'));
        } catch {
          throw fail(400, 'the request body is not JSON');
        }
      }
      if (body === undefined) {
        if (op.bodyRequired) throw fail(400, 'a request body is required');
        return;
      }
      if (op.body && !op.body(body)) throw fail(400, `request body ${describe(op.body.errors)}`);
    },
  };
  if (s.validateResponses) {
    policy.respond = (ctx, _state, status) => {
      const { op } = operationOf(paths, ctx);
      const validate = op && (op.responses.get(String(status)) ?? op.responses.get(`${String(status)[0]}XX`) ?? op.responses.get('DEFAULT'));
      if (!validate) return undefined;
      return {
        body(answer) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(answer.toString('utf8'));
          } catch {
            throw fail(502, `the ${status} answer is not JSON`);
          }
          if (!validate(parsed)) throw fail(502, `the ${status} answer ${describe(validate.errors)}`);
          return answer;
        },
      };
    };
  }
  return policy satisfies Policy;
};
