// ApimTemplate conditions: CEL (@bufbuild/cel) over request attributes, parsed and planned once at config load.
import type * as Cel from '@bufbuild/cel';
import type * as CelExt from '@bufbuild/cel/ext';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../gateway/context.js';
import { lazyRequire } from '../lib/lazy-require.js';
import type { ApimState } from './types.js';

type Expr = ReturnType<typeof Cel.parse>['expr'];

const VARIABLES = ['request', 'model', 'apiproduct', 'client'] as const;
const KNOWN = new Set<string>(VARIABLES);

/** The CEL library and its environment, loaded with the first condition compiled (most configurations have none). */
const cel = lazyRequire<typeof Cel>('@bufbuild/cel');
const celStrings = lazyRequire<typeof CelExt>('@bufbuild/cel/ext');
let env: ReturnType<typeof Cel.celEnv> | undefined;

function celEnvironment(): ReturnType<typeof Cel.celEnv> {
  if (env) return env;
  const { CelScalar, celEnv, mapType } = cel();
  const variables = {
    request: mapType(CelScalar.STRING, CelScalar.DYN),
    model: CelScalar.STRING,
    apiproduct: mapType(CelScalar.STRING, CelScalar.STRING),
    client: mapType(CelScalar.STRING, CelScalar.STRING),
  } satisfies Record<(typeof VARIABLES)[number], unknown>;
  return (env = celEnv({ variables, funcs: celStrings().strings }));
}

/** A compiled condition; `test` is false when the expression errs (a missing header key, say). */
export interface Condition {
  readonly source: string;
  test(ctx: RequestContext, state: ApimState): boolean;
}

function headerMap(headers: IncomingHttpHeaders): Map<string, string> {
  const out = new Map<string, string>();
  for (const name in headers) {
    const v = headers[name];
    if (v !== undefined) out.set(name, Array.isArray(v) ? v.join(', ') : v);
  }
  return out;
}

/** The variables a condition sees: what is known in the phase it runs in (model and product may still be empty). */
function bindingsOf(ctx: RequestContext, state: ApimState) {
  return {
    request: new Map<string, string | Map<string, string>>([['path', ctx.path], ['method', ctx.method], ['headers', headerMap(ctx.headers)]]),
    model: ctx.model ?? '',
    apiproduct: new Map([['name', state.product?.name ?? '']]),
    client: new Map([['ip', ctx.clientIp ?? '']]),
  };
}

/** The sub-expressions of a select, call, list or map expression (a comprehension's are read by name); none else. */
function operands(k: Expr['exprKind']): (Expr | undefined)[] {
  switch (k.case) {
    case 'selectExpr':
      return [k.value.operand];
    case 'callExpr':
      return [k.value.target, ...k.value.args];
    case 'listExpr':
      return k.value.elements;
    case 'structExpr':
      return k.value.entries.flatMap((e) => (e.keyKind.case === 'mapKey' ? [e.keyKind.value, e.value] : [e.value]));
    default:
      return [];
  }
}

/** Identifiers the expression reads that no comprehension binds: each must be one of the variables. */
function freeIdentifiers(expr: Expr | undefined, bound: ReadonlySet<string>, out: Set<string>): void {
  if (!expr) return;
  const k = expr.exprKind;
  if (k.case === 'identExpr') {
    if (!bound.has(k.value.name)) out.add(k.value.name);
  } else if (k.case === 'comprehensionExpr') {
    const c = k.value;
    freeIdentifiers(c.iterRange, bound, out);
    freeIdentifiers(c.accuInit, bound, out);
    const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter(Boolean));
    for (const e of [c.loopCondition, c.loopStep, c.result]) freeIdentifiers(e, inner, out);
  } else for (const e of operands(k)) freeIdentifiers(e, bound, out);
}

/** A literal made of constants only (`['x-tenant', 'x-team']`): its size is the condition author's, not a client's. */
function isConstant(expr: Expr | undefined): boolean {
  const k = expr?.exprKind;
  if (k?.case === 'constExpr') return true;
  return (k?.case === 'listExpr' || k?.case === 'structExpr') && operands(k).every(isConstant);
}

/** A split() of anything but a constant: a list as long as a client wants, built anew each time it runs. */
function isRequestSplit(k: Expr['exprKind']): boolean {
  return k.case === 'callExpr' && k.value.function === 'split' && !isConstant(k.value.target);
}

/**
 * Whether a loop runs inside a comprehension (exists, all, map, filter) whose size a client sets: one choosing the
 * number of headers, or the items of a header it splits, chooses the square of it (1,500 headers held the event loop
 * 4.4 s; @bufbuild/cel has no cost limit). A loop is another comprehension, or a split() of request data, which walks
 * the text and then, under `in`, the list (1,200 items in each of two headers held it 0.7 s): CEL has no other way
 * to make a list a client sizes, so `x in <such a list>` always holds one. Only a loop over a constant literal is
 * bounded by the author alone, on either side; anything else derived from the request (a field, a split, a name bound
 * to it) is client-sized.
 */
function nestedRequestLoop(expr: Expr | undefined, inLoop: boolean): boolean {
  if (!expr) return false;
  const k = expr.exprKind;
  if (inLoop && isRequestSplit(k)) return true;
  if (k.case !== 'comprehensionExpr') return operands(k).some((e) => nestedRequestLoop(e, inLoop));
  const c = k.value;
  const clientSized = !isConstant(c.iterRange);
  if (clientSized && inLoop) return true;
  const body = inLoop || clientSized;
  return nestedRequestLoop(c.iterRange, inLoop) || nestedRequestLoop(c.accuInit, inLoop) || [c.loopCondition, c.loopStep, c.result].some((e) => nestedRequestLoop(e, body));
}

const EMPTY_CTX = { path: '/', method: 'GET', headers: {}, clientIp: '' } as unknown as RequestContext;

/**
 * compileCondition("request.path.startsWith('/v1/chat') && model == 'llama'") → Condition.
 * @throws Error on a syntax error, an unknown variable, or an expression that is not a bool.
 */
export function compileCondition(source: string): Condition {
  const { isCelError, parse, plan } = cel();
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (err) {
    throw new Error(`not a CEL expression: ${(err as Error).message}`);
  }
  const free = new Set<string>();
  freeIdentifiers(parsed.expr, new Set(), free);
  const unknown = [...free].filter((n) => !KNOWN.has(n));
  if (unknown.length > 0) throw new Error(`unknown variable ${unknown.map((n) => `"${n}"`).join(', ')} (known: ${[...KNOWN].join(', ')})`);
  if (nestedRequestLoop(parsed.expr, false)) {
    throw new Error(
      "a loop over request data inside another (exists in exists, a split() of a header in exists, as in `t in request.headers['x'].split(',')`, ...) takes time in the square of what a client sends: not allowed",
    );
  }
  const evaluate = plan(celEnvironment(), parsed);
  // A trial run on an empty request catches expressions of the wrong type; data-dependent errors are fine here.
  const trial = evaluate(bindingsOf(EMPTY_CTX, {}));
  if (!isCelError(trial) && typeof trial !== 'boolean') throw new Error('must evaluate to a bool');
  return {
    source,
    test: (ctx, state) => evaluate(bindingsOf(ctx, state)) === true,
  };
}
