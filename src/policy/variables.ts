// Request variables (Apigee's names) compiled once into accessors, for identifiers and message weights.
import { queryOf, type RequestContext } from '../gateway/context.js';
import type { ApimState } from './types.js';

export type Variable = (ctx: RequestContext, state: ApimState) => string | undefined;

/**
 * Where a variable's value comes from, for a reader that has the caller's key but no request of theirs (the quota
 * report): `key` — the key, its app or developer; `entitlement` — the product and operation set that entitled the
 * request; `caller` — what the client sends with any request (headers, query parameters, its address); `request` —
 * what only the request itself carries (its model, path, verb) or earlier policies set (flow variables).
 */
export type VariableSource = 'key' | 'entitlement' | 'caller' | 'request';

const FIXED: Record<string, { read: Variable; source: VariableSource }> = {
  // Apigee's client_id is the consumer key; tollgate uses the key's non-secret id so counters never hold a secret.
  client_id: { read: (_ctx, s) => s.key?.keyId, source: 'key' },
  'app.id': { read: (_ctx, s) => s.key?.appId, source: 'key' },
  'app.name': { read: (_ctx, s) => s.key?.appName, source: 'key' },
  'developer.app.id': { read: (_ctx, s) => s.key?.appId, source: 'key' },
  'developer.app.name': { read: (_ctx, s) => s.key?.appName, source: 'key' },
  'developer.id': { read: (_ctx, s) => s.key?.developerId, source: 'key' },
  'developer.email': { read: (_ctx, s) => s.key?.developerEmail, source: 'key' },
  'apiproduct.name': { read: (_ctx, s) => s.product?.name, source: 'entitlement' },
  'apiproduct.operationset.name': { read: (_ctx, s) => s.operationSet?.name, source: 'entitlement' },
  model: { read: (ctx) => ctx.model, source: 'request' },
  'request.path': { read: (ctx) => ctx.path, source: 'request' },
  'request.verb': { read: (ctx) => ctx.method, source: 'request' },
  'client.ip': { read: (ctx) => ctx.clientIp, source: 'caller' },
};

/** Own names only: `constructor` or `toString` is no variable. */
const fixedVariable = (ref: string) => (Object.hasOwn(FIXED, ref) ? FIXED[ref] : undefined);

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
  const fixed = fixedVariable(ref);
  if (fixed) return fixed.read;
  if (ref.startsWith(HEADER) && ref.length > HEADER.length) {
    const name = ref.slice(HEADER.length).toLowerCase();
    return (ctx) => {
      const v = ctx.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
  }
  if (ref.startsWith(QUERY) && ref.length > QUERY.length) {
    const name = ref.slice(QUERY.length);
    return (ctx) => queryOf(ctx.url).get(name) ?? undefined;
  }
  if (isFlowVariableName(ref)) return (_ctx, s) => s.vars?.get(ref);
  throw new Error(`unknown variable "${ref}" (known: ${Object.keys(FIXED).join(', ')}, ${HEADER}NAME, ${QUERY}NAME, or a dotted flow variable like kvm.NAME)`);
}

/** A credential a policy reads (compileVariable's ref), and how to keep it from the model server. */
export interface CredentialSource {
  read: Variable;
  /** Removes the header or query parameter it came from from the upstream request; a flow variable has nothing to remove. */
  withhold(ctx: RequestContext): void;
}

/**
 * compileCredential('request.header.x-key'): the key read as compileVariable reads it, withheld from upstream as the
 * standard credential headers are (a custom header or query parameter went to the model server with the key in it);
 * later policies still read it.
 */
export function compileCredential(ref: string): CredentialSource {
  const read = compileVariable(ref);
  if (ref.startsWith(HEADER)) {
    const name = ref.slice(HEADER.length).toLowerCase();
    return { read, withhold: (ctx) => void ((ctx.upstreamHeaders ??= {})[name] = null) };
  }
  if (ref.startsWith(QUERY)) {
    const name = ref.slice(QUERY.length);
    return { read, withhold: (ctx) => void (ctx.withheldQuery ??= new Set()).add(name) };
  }
  return { read, withhold: () => {} };
}

/** Where the value of a variable compileVariable accepts comes from (headers and query parameters: the caller's). */
export function variableSource(ref: string): VariableSource {
  return fixedVariable(ref)?.source ?? (ref.startsWith(HEADER) || ref.startsWith(QUERY) ? 'caller' : 'request');
}

/**
 * The heaviest a message weighs: a client that sets its own weight (Apigee's example reads `request.header.weight`)
 * must not reach counter arithmetic with 1e300. SpikeArrest refuses a weight above its rate's count before counting.
 */
export const MAX_MESSAGE_WEIGHT = 1_000_000;

/**
 * A message weight: a positive integer from the variable, at most MAX_MESSAGE_WEIGHT (more counts as that), else 1
 * (a missing or bad weight never makes a request free).
 */
export function compileWeight(ref: string | undefined): ((ctx: RequestContext, state: ApimState) => number) | null {
  if (ref === undefined) return null;
  const read = compileVariable(ref);
  return (ctx, state) => {
    const raw = read(ctx, state);
    // Decimal digits only: Number() also reads 0x3, 1e2 and ' 4 '.
    const n = raw === undefined || !/^\d+$/.test(raw) ? NaN : Number(raw);
    return n > MAX_MESSAGE_WEIGHT ? MAX_MESSAGE_WEIGHT : n >= 1 ? n : 1;
  };
}
