// ApimTemplate conditions: CEL (@bufbuild/cel) over request attributes, parsed, type-checked and planned once at
// config load.
import type * as Cel from '@bufbuild/cel';
import type * as CelExt from '@bufbuild/cel/ext';
import type { IncomingHttpHeaders } from 'node:http';
import type * as Re2js from 're2js';
import type { RequestContext } from '../gateway/context.js';
import { lazyRequire } from '../lib/lazy-require.js';
import { loadRe2 } from '../lib/linear-regex.js';
import type { ApimState } from './types.js';

type Expr = ReturnType<typeof Cel.parse>['expr'];

/**
 * A condition's static type: a CEL type's name (`string`, `dyn`, `google.protobuf.Duration`), a list, a map, or a
 * variable's record of fields (at request time a map holding just those).
 */
type Type = string | { readonly list: Type } | { readonly map: readonly [Type, Type] } | { readonly fields: Readonly<Record<string, Type>> };

/** The variables and their fields, as bindingsOf fills them: a misspelt field is refused at load, not false forever. */
const VARIABLES = {
  request: { fields: { path: 'string', method: 'string', headers: { map: ['string', 'string'] } } },
  model: 'string',
  apiproduct: { fields: { name: 'string' } },
  client: { fields: { ip: 'string' } },
} satisfies Record<string, Type>;
const KNOWN = new Set(Object.keys(VARIABLES));

/** The CEL library and its environment, loaded with the first condition compiled (most configurations have none). */
const cel = lazyRequire<typeof Cel>('@bufbuild/cel');
const celStrings = lazyRequire<typeof CelExt>('@bufbuild/cel/ext');
let functions: Cel.CelFunc[] | undefined;
let env: ReturnType<typeof Cel.celEnv> | undefined;

/**
 * `replace` as the strings extension specifies it (cel-go's documentation: a negative count replaces all, an empty
 * substring matches before each character and at the end), in time linear in its input and output. The library's
 * rebuilds the whole string for each occurrence: 16,000 dashes of a header through `replace('-', '_')` took 281 ms.
 */
function replace(this: string, substr: string, repl: string, num?: bigint): string {
  const limit = num === undefined || num < 0n ? Infinity : Number(num);
  const parts: string[] = [];
  let from = 0;
  for (let at = this.indexOf(substr); at !== -1 && parts.length < limit; ) {
    parts.push(this.slice(from, at));
    from = at + substr.length;
    if (substr !== '') at = this.indexOf(substr, from);
    else if (at < this.length) at += this.codePointAt(at)! > 0xffff ? 2 : 1;
    else at = -1;
  }
  parts.push(this.slice(from));
  return parts.join(repl);
}

/** The functions added to CEL's standard ones: the strings extension, with a linear replace(). */
function celFunctions(): Cel.CelFunc[] {
  if (functions) return functions;
  const { CelScalar, celMethod } = cel();
  const { STRING, INT } = CelScalar;
  const linear = [celMethod('replace', STRING, [STRING, STRING], STRING, replace), celMethod('replace', STRING, [STRING, STRING, INT], STRING, replace)];
  // Later functions of the same signature replace earlier ones.
  return (functions = [...celStrings().strings, ...linear]);
}

function celEnvironment(): ReturnType<typeof Cel.celEnv> {
  return (env ??= cel().celEnv({ funcs: celFunctions() }));
}

/** A compiled condition; `test` is false when the expression errs (a missing header key, say). */
export interface Condition {
  readonly source: string;
  test(ctx: RequestContext, state: ApimState): boolean;
}

/**
 * Header values by name, found whatever the case of the name asked for (`request.headers['X-Tier']`, `'X-Tier' in
 * request.headers`), as HTTP compares names (RFC 9110 §5.1) and as `request.header.X-Tier` reads them (variables.ts):
 * Node gives the names lower-case, so a key with a capital letter was false on every request. A loop (`exists`,
 * `all`, ...) sees the names lower-case.
 */
class HeaderMap extends Map<string, string> {
  override get(name: string): string | undefined {
    return super.get(name.toLowerCase());
  }

  override has(name: string): boolean {
    return super.has(name.toLowerCase());
  }
}

function headerMap(headers: IncomingHttpHeaders): Map<string, string> {
  const out = new HeaderMap();
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
  } satisfies Record<keyof typeof VARIABLES, unknown>;
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

/** `expr` and every expression inside it, a comprehension's parts included. */
function* subExpressions(expr: Expr | undefined): Generator<Expr> {
  if (!expr) return;
  yield expr;
  const k = expr.exprKind;
  const inner = k.case === 'comprehensionExpr' ? [k.value.iterRange, k.value.accuInit, k.value.loopCondition, k.value.loopStep, k.value.result] : operands(k);
  for (const e of inner) yield* subExpressions(e);
}

/**
 * The first call whose cost is the product of two sizes a client chooses, and why. A replace() whose replacement, or
 * a join() whose separator, is not a literal makes a string that long (`h.replace('a', request.headers['x-b'])` with
 * two 7 KB headers took 175 s and 1.7 GB; `h.split('').join(request.headers['x-b'])` 8 s); with a literal, the output
 * is the input times at most the literal's length plus one: linear. RE2 is linear in the text for a given pattern,
 * so a matches() whose pattern is not a literal takes the pattern's size times the text's (an 8 KB pattern from one
 * header over another took 60-150 ms; 1,000 header names as patterns over a 6 KB header, 354 ms). format() needs no
 * such rule: each placeholder takes one argument (too few is an error), so its output is the format and the
 * arguments, each formatted once.
 */
function requestSizedProduct(expr: Expr | undefined): { readonly at: Expr; readonly reason: string } | undefined {
  for (const e of subExpressions(expr)) {
    const k = e.exprKind;
    if (k.case !== 'callExpr' || !k.value.target) continue;
    const { function: fn, args } = k.value;
    if (fn === 'replace' && !isConstant(args[1])) {
      return { at: e, reason: 'replace() with a replacement that is not a literal makes a string as long as the product of two sizes a client chooses' };
    }
    if (fn === 'join' && args.length > 0 && !isConstant(args[0])) {
      return { at: e, reason: 'join() with a separator that is not a literal makes a string as long as the product of two sizes a client chooses' };
    }
    if (fn === 'matches' && !isConstant(args[0])) {
      return { at: e, reason: "matches() with a pattern that is not a literal takes time in the pattern's size times the text's, both of which a client may choose" };
    }
  }
  return undefined;
}

/** Where `e` is in the condition's text, for an error message: ` (column 14)`, or nothing when the parser did not say. */
function columnOf(parsed: ReturnType<typeof Cel.parse>, e: Expr): string {
  const at = parsed.sourceInfo?.positions[String(e.id)];
  return at === undefined ? '' : ` (column ${at + 1})`;
}

/**
 * The environment a condition runs in: the shared one, or for a condition that calls matches(), one that runs its
 * patterns compiled here, once: @bufbuild/cel 0.6 compiles the pattern on every call, on each item of an `exists` too.
 * Patterns are literals (requestSizedProduct), so a condition's are all known now, and one RE2 cannot read (a
 * lookahead, a backreference) is refused at load rather than being false on every request.
 * @throws Error naming the pattern, RE2's reason and the column.
 */
function environmentOf(parsed: ReturnType<typeof Cel.parse>): ReturnType<typeof Cel.celEnv> {
  const patterns = new Map<string, Re2js.RE2JS>();
  for (const e of subExpressions(parsed.expr)) {
    const k = e.exprKind;
    const pattern = k.case === 'callExpr' && k.value.function === 'matches' ? k.value.args[0]?.exprKind : undefined;
    if (pattern?.case !== 'constExpr' || pattern.value.constantKind.case !== 'stringValue') continue;
    const source = pattern.value.constantKind.value;
    if (patterns.has(source)) continue;
    try {
      patterns.set(source, loadRe2().RE2JS.compile(source));
    } catch (err) {
      throw new Error(`matches() cannot run the pattern ${JSON.stringify(source)}: ${(err as Error).message}${columnOf(parsed, e)}`);
    }
  }
  if (patterns.size === 0) return celEnvironment();
  return cel().celEnv({ funcs: celFunctions(), re2: { compile: (source) => patterns.get(source) ?? loadRe2().RE2JS.compile(source) } });
}

function show(t: Type): string {
  if (typeof t === 'string') return t;
  if ('list' in t) return `list(${show(t.list)})`;
  if ('map' in t) return `map(${show(t.map[0])}, ${show(t.map[1])})`;
  return `{${Object.keys(t.fields).join(', ')}}`;
}

function typeOfCel(t: Cel.CelType): Type {
  if (t.kind === 'list') return { list: typeOfCel(t.element) };
  if (t.kind === 'map') return { map: [typeOfCel(t.key), typeOfCel(t.value)] };
  return t.name;
}

/** Whether a value of type `t` may be passed where `p` is declared; dyn fits either way, as in CEL's checkers. */
function fits(t: Type, p: Type): boolean {
  if (t === 'dyn' || p === 'dyn') return true;
  if (typeof t === 'string' || typeof p === 'string') return t === p;
  if ('list' in p) return 'list' in t && fits(t.list, p.list);
  if (!('map' in p)) return false;
  if ('map' in t) return fits(t.map[0], p.map[0]) && fits(t.map[1], p.map[1]);
  return 'fields' in t && fits('string', p.map[0]) && Object.values(t.fields).every((f) => fits(f, p.map[1]));
}

/** The type two values may have: theirs when they agree, dyn otherwise. */
function either(a: Type, b: Type): Type {
  return show(a) === show(b) ? a : 'dyn';
}

// Numbers of different types compare, and lists and maps take any as an index or key (`[a, b][1u]`, `{1: x}[1.0]`).
const NUMBERS: readonly Type[] = ['int', 'uint', 'double'];
const keyFits = (t: Type, key: Type): boolean => fits(t, key) || (NUMBERS.includes(key) && NUMBERS.some((n) => fits(t, n)));

/** Whether values of these types can be equal: `==` is declared over dyn, so `request.path == 5` is false, always. */
function comparable(a: Type, b: Type): boolean {
  return fits(a, b) || a === 'null_type' || b === 'null_type' || (NUMBERS.includes(a) && NUMBERS.includes(b));
}

/** What a comprehension's variable holds: a list's items, a map's (or a variable's) keys; undefined if no loop. */
function itemOf(t: Type): Type | undefined {
  if (t === 'dyn') return 'dyn';
  if (typeof t === 'string') return undefined;
  if ('list' in t) return t.list;
  return 'map' in t ? t.map[0] : 'string';
}

/** A variable's field, a map's value (`request.headers.x`), or undefined when there is none. */
function fieldOf(t: Type, name: string): Type | undefined {
  if (t === 'dyn') return 'dyn';
  if (typeof t === 'string' || 'list' in t) return undefined;
  if ('map' in t) return fits('string', t.map[0]) ? t.map[1] : undefined;
  return Object.hasOwn(t.fields, name) ? t.fields[name] : undefined;
}

/** A list's item, a map's value, a variable's field (`request['path']`), or undefined when `key` can take none. */
function indexed(t: Type, key: Type, keyExpr: Expr): Type | undefined {
  if (t === 'dyn') return 'dyn';
  if (typeof t === 'string') return undefined;
  if ('list' in t) return keyFits(key, 'int') ? t.list : undefined;
  if ('map' in t) return keyFits(key, t.map[0]) ? t.map[1] : undefined;
  const k = keyExpr.exprKind;
  if (k.case === 'constExpr' && k.value.constantKind.case === 'stringValue') return fieldOf(t, k.value.constantKind.value);
  return fits(key, 'string') ? 'dyn' : undefined;
}

const CONSTANT_TYPES: Record<string, Type> = {
  boolValue: 'bool',
  int64Value: 'int',
  uint64Value: 'uint',
  doubleValue: 'double',
  stringValue: 'string',
  bytesValue: 'bytes',
  nullValue: 'null_type',
  durationValue: 'google.protobuf.Duration',
  timestampValue: 'google.protobuf.Timestamp',
};

/**
 * The type of a parsed condition, from the variables' declarations and the functions' own (the environment's
 * overloads, the ones the evaluator dispatches on); throws at the first call no overload takes, which would err on
 * every request. @bufbuild/cel 0.6's own checker types constants and identifiers only, and is not exported.
 */
function typeCheck(parsed: ReturnType<typeof Cel.parse>, funcs: Cel.CelEnv['funcs']): Type {
  function fail(e: Expr, message: string): never {
    throw new Error(`${message}${columnOf(parsed, e)}`);
  }
  function bool(e: Expr | undefined, t: Type): void {
    if (e && !fits(t, 'bool')) fail(e, `a bool is needed here, not ${show(t)}`);
  }
  function call(e: Expr, c: Extract<Expr['exprKind'], { case: 'callExpr' }>['value'], scope: ReadonlyMap<string, Type>): Type {
    const self = c.target ? typeOf(c.target, scope) : undefined;
    const args = c.args.map((a) => typeOf(a, scope));
    // The operators the evaluator runs itself, not through a declared function.
    switch (c.function) {
      case '_&&_':
      case '_||_':
        args.forEach((t, i) => bool(c.args[i], t));
        return 'bool';
      case '@not_strictly_false':
        return 'bool';
      case '_==_':
      case '_!=_':
        if (!comparable(args[0], args[1])) fail(e, `${show(args[0])} and ${show(args[1])} are never equal`);
        return 'bool';
      case '_?_:_':
        bool(c.args[0], args[0]);
        return either(args[1], args[2]);
      case '_[_]':
        return indexed(args[0], args[1], c.args[1]) ?? fail(e, `${show(args[0])} cannot be indexed by ${show(args[1])}`);
    }
    const group = funcs.find(c.function);
    if (!group) fail(e, `unknown function "${c.function}"`);
    const results = [...group]
      .filter((f) => (f.target === undefined) === (self === undefined) && f.arguments.length === args.length)
      .filter((f) => (!f.target || fits(self!, typeOfCel(f.target))) && args.every((t, i) => fits(t, typeOfCel(f.arguments[i]))))
      .map((f) => typeOfCel(f.result));
    if (results.length === 0) {
      fail(e, `found no matching overload for '${c.function}' applied to '${self ? `${show(self)}.` : ''}(${args.map(show).join(', ')})'`);
    }
    return results.reduce(either);
  }
  function typeOf(e: Expr | undefined, scope: ReadonlyMap<string, Type>): Type {
    if (!e) return 'dyn';
    const k = e.exprKind;
    switch (k.case) {
      case 'constExpr':
        return CONSTANT_TYPES[k.value.constantKind.case ?? ''] ?? 'dyn';
      case 'identExpr':
        return scope.get(k.value.name) ?? VARIABLES[k.value.name as keyof typeof VARIABLES];
      case 'selectExpr': {
        const t = typeOf(k.value.operand, scope);
        const field = fieldOf(t, k.value.field) ?? fail(e, `${show(t)} has no field "${k.value.field}"`);
        return k.value.testOnly ? 'bool' : field;
      }
      case 'callExpr':
        return call(e, k.value, scope);
      case 'listExpr': {
        const items = k.value.elements.map((x) => typeOf(x, scope));
        return { list: items.length > 0 ? items.reduce(either) : 'dyn' };
      }
      case 'structExpr': {
        // A message built by name (google.protobuf.Duration{seconds: 1}): the evaluator's registry types it.
        if (k.value.messageName) return 'dyn';
        const keys = k.value.entries.map((x) => typeOf(x.keyKind.case === 'mapKey' ? x.keyKind.value : undefined, scope));
        const values = k.value.entries.map((x) => typeOf(x.value, scope));
        return { map: keys.length > 0 ? [keys.reduce(either), values.reduce(either)] : ['dyn', 'dyn'] };
      }
      case 'comprehensionExpr': {
        const c = k.value;
        const range = typeOf(c.iterRange, scope);
        const item = itemOf(range) ?? fail(e, `cannot loop over ${show(range)}`);
        const accu = typeOf(c.accuInit, scope);
        const body = new Map(scope).set(c.accuVar, accu).set(c.iterVar, item);
        if (c.iterVar2) body.set(c.iterVar2, 'dyn');
        bool(c.loopCondition, typeOf(c.loopCondition, body));
        const step = typeOf(c.loopStep, body);
        return typeOf(c.result, new Map(scope).set(c.accuVar, either(accu, step)));
      }
      default:
        return 'dyn';
    }
  }
  return typeOf(parsed.expr, new Map());
}

/**
 * compileCondition("request.path.startsWith('/v1/chat') && model == 'llama'") → Condition.
 * @throws Error on a syntax error, an unknown variable or field, a call no overload takes, an expression that is not a
 *   bool, one whose time or memory grows faster than what a client sends, or a pattern RE2 cannot run.
 */
export function compileCondition(source: string): Condition {
  const { parse, plan } = cel();
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
  const type = typeCheck(parsed, celEnvironment().funcs);
  // dyn (an item of a split(), say) would be a bool only if the request makes it one: as likely a comparison forgotten.
  if (type !== 'bool') throw new Error(`must evaluate to a bool, not ${show(type)}${type === 'dyn' ? ' (compare it: == true)' : ''}`);
  if (nestedRequestLoop(parsed.expr, false)) {
    throw new Error(
      "a loop over request data inside another (exists in exists, a split() of a header in exists, as in `t in request.headers['x'].split(',')`, ...) takes time in the square of what a client sends: not allowed",
    );
  }
  const product = requestSizedProduct(parsed.expr);
  if (product) throw new Error(`${product.reason}: not allowed${columnOf(parsed, product.at)}`);
  const evaluate = plan(environmentOf(parsed), parsed);
  return {
    source,
    test: (ctx, state) => evaluate(bindingsOf(ctx, state)) === true,
  };
}
