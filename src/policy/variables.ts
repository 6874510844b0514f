// Request variables (Apigee's names) compiled once into accessors, for identifiers and message weights.
import type { RequestContext } from '../gateway/context.js';
import type { ApimState } from './types.js';

export type Variable = (ctx: RequestContext, state: ApimState) => string | undefined;

const FIXED: Record<string, Variable> = {
  // Apigee's client_id is the consumer key; tollgate uses the key's non-secret id so counters never hold a secret.
  client_id: (_ctx, s) => s.key?.keyId,
  'app.id': (_ctx, s) => s.key?.appId,
  'app.name': (_ctx, s) => s.key?.appName,
  'developer.app.id': (_ctx, s) => s.key?.appId,
  'developer.app.name': (_ctx, s) => s.key?.appName,
  'developer.id': (_ctx, s) => s.key?.developerId,
  'developer.email': (_ctx, s) => s.key?.developerEmail,
  'apiproduct.name': (_ctx, s) => s.product?.name,
  'apiproduct.operationset.name': (_ctx, s) => s.operationSet?.name,
  model: (ctx) => ctx.model,
  'request.path': (ctx) => ctx.path,
  'request.verb': (ctx) => ctx.method,
  'client.ip': (ctx) => ctx.clientIp,
};

const HEADER = 'request.header.';
const QUERY = 'request.queryparam.';
/** Namespaces tollgate fills itself: an unknown name under one is a typo, not a flow variable. */
const RESERVED = ['request.', 'response.', 'client.', 'developer.', 'app.', 'apiproduct.'];

/** A flow variable's name is dotted (`kvm.tier`, `jwt.claim.sub`) and outside tollgate's namespaces, so a bare typo still fails. */
export function isFlowVariableName(name: string): boolean {
  return /^[A-Za-z_][\w-]*(\.[\w-]+)+$/.test(name) && !RESERVED.some((ns) => name.startsWith(ns));
}

/** Sets a flow variable (a KVM read, a JWT claim, a callout's answer) that later policies read by name. */
export function setVariable(state: ApimState, name: string, value: string): void {
  (state.vars ??= new Map()).set(name, value);
}

/**
 * compileVariable('request.header.X-Tenant') → accessor. A dotted name outside tollgate's namespaces is a flow
 * variable (`kvm.tier`, `jwt.claim.sub`) set by an earlier policy; any other unknown name throws (a config error).
 */
export function compileVariable(ref: string): Variable {
  const fixed = FIXED[ref];
  if (fixed) return fixed;
  if (ref.startsWith(HEADER) && ref.length > HEADER.length) {
    const name = ref.slice(HEADER.length).toLowerCase();
    return (ctx) => {
      const v = ctx.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
  }
  if (ref.startsWith(QUERY) && ref.length > QUERY.length) {
    const name = ref.slice(QUERY.length);
    return (ctx) => {
      const q = ctx.url.indexOf('?');
      return q === -1 ? undefined : (new URLSearchParams(ctx.url.slice(q + 1)).get(name) ?? undefined);
    };
  }
  if (isFlowVariableName(ref)) return (_ctx, s) => s.vars?.get(ref);
  throw new Error(`unknown variable "${ref}" (known: ${Object.keys(FIXED).join(', ')}, ${HEADER}NAME, ${QUERY}NAME, or a dotted flow variable like kvm.NAME)`);
}

/** A message weight: a positive integer from the variable, else 1 (a missing or bad weight never makes a request free). */
export function compileWeight(ref: string | undefined): ((ctx: RequestContext, state: ApimState) => number) | null {
  if (ref === undefined) return null;
  const read = compileVariable(ref);
  return (ctx, state) => {
    const raw = read(ctx, state);
    const n = raw === undefined ? NaN : Number(raw);
    return Number.isSafeInteger(n) && n > 0 ? n : 1;
  };
}
