// An OpenAPI document's schemas compiled as its version means them: 3.0's (JSON Schema draft 4's bounds, `nullable`,
// `readOnly` and `writeOnly`) on ajv's draft-07 validator, 3.1's (JSON Schema 2020-12) on ajv's 2020-12 one.
import type * as AjvModule from 'ajv';
import type * as Ajv2020Module from 'ajv/dist/2020.js';
import type { Ajv, FuncKeywordDefinition, Options, ValidateFunction } from 'ajv';
import type { FormatName, FormatsPlugin } from 'ajv-formats';
import { lazyRequire } from '../../../lib/lazy-require.js';
import { compileTextPattern } from '../../../lib/linear-regex.js';
import { canonicalJson } from '../../caching/canonical-json.js';

/** Ajv loads with the first OAS document compiled (an OASValidation policy), not with every gateway. */
const loadAjv = lazyRequire<typeof AjvModule>('ajv');
const loadAjv2020 = lazyRequire<typeof Ajv2020Module>('ajv/dist/2020.js');
const loadFormats = lazyRequire<FormatsPlugin>('ajv-formats');

/**
 * ajv-formats' checks (JSON Schema's and OpenAPI's: int32, int64, byte...), but `url`, which is neither's and whose
 * expression takes quadratic time on client text (20,000 characters: 2.7 s); it stays unchecked like any unknown format.
 */
const FORMATS: FormatName[] = [
  'date', 'time', 'date-time', 'iso-time', 'iso-date-time', 'duration', 'uri', 'uri-reference', 'uri-template', 'email', 'hostname',
  'ipv4', 'ipv6', 'regex', 'uuid', 'json-pointer', 'json-pointer-uri-fragment', 'relative-json-pointer', 'byte', 'int32', 'int64',
  'float', 'double', 'password', 'binary',
];

/**
 * JSON Schema 2020-12's keywords (OpenAPI 3.1's) that ajv's draft-07 validator would skip: a 3.0 document that uses
 * them is refused, not checked without them.
 */
const LATER_KEYWORDS = ['unevaluatedProperties', 'unevaluatedItems', 'dependentRequired', 'dependentSchemas', 'prefixItems', 'minContains', 'maxContains', '$dynamicRef'];

/** Where a schema holds subschemas: one, a list of them, or a map of names to them (every draft's keywords). */
const ONE_SCHEMA = ['items', 'additionalItems', 'additionalProperties', 'not', 'propertyNames', 'contains', 'if', 'then', 'else', 'unevaluatedItems', 'unevaluatedProperties', 'contentSchema'];
const SCHEMA_LISTS = ['items', 'allOf', 'anyOf', 'oneOf', 'prefixItems'];
const SCHEMA_MAPS = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies', 'dependentSchemas'];

export type Node = Record<string, unknown>;
export const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The node at the local reference `#/a/b~1c` of `doc`, or undefined. */
export function nodeAt(doc: Node, ref: string): unknown {
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((n, seg) => (isNode(n) ? n[seg.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
}

/** A keyword's check of the data, with the errors it sets (ajv's DataValidateFunction, not exported by name). */
type DataCheck = ReturnType<NonNullable<FuncKeywordDefinition['compile']>>;

/** Requests and answers read 3.0's `readOnly` and `writeOnly` differently. */
type Direction = 'request' | 'response';

/**
 * Ajv's regular expression engine for `pattern` and `patternProperties`: a native RegExp, or RE2 for a pattern V8
 * may take exponential time on (linear-regex.ts); ajv calls it as it compiles, so a pattern neither can run fails the
 * config load.
 */
const checkedRegExp = Object.assign(
  (pattern: string, flags: string) => {
    try {
      return compileTextPattern(pattern, flags);
    } catch (err) {
      throw new Error(`pattern "${pattern}": ${(err as Error).message}`);
    }
  },
  // What standalone code (which tollgate does not generate) would call; tollgate compiles in process only.
  { code: 'new RegExp' },
);

/**
 * JSON Schema's `uniqueItems` in linear time: ajv's own compares every pair of items unless their type is declared a
 * scalar one (10,000 objects: 5.5 s of event loop). Items are equal as JSON values are, keys in any order.
 */
const uniqueItems: FuncKeywordDefinition = {
  keyword: 'uniqueItems',
  type: 'array',
  schemaType: 'boolean',
  compile(on: boolean) {
    if (!on) return () => true;
    const unique: DataCheck = (items: unknown[]) => {
      const seen = new Map<string, number>();
      for (let j = 0; j < items.length; j++) {
        const key = canonicalJson(items[j]);
        const i = seen.get(key);
        if (i !== undefined) {
          unique.errors = [{ keyword: 'uniqueItems', params: { i, j }, message: `must NOT have duplicate items (items ## ${i} and ${j} are identical)` }];
          return false;
        }
        seen.set(key, j);
      }
      return true;
    };
    return unique;
  },
};

/**
 * The schemas of one OpenAPI document as ajv compiles them for requests or for answers: from a copy of the document,
 * each schema rewritten, as it is first compiled, where the document's version means it otherwise than ajv would read it.
 */
export class OasSchemas {
  readonly #source: Node;
  readonly #direction: Direction;
  readonly #oas30: boolean;
  readonly #prepared = new Set<Node>();
  #doc?: Node;
  #plain?: Ajv;
  #coercing?: Ajv;

  constructor(doc: Node, direction: Direction) {
    this.#source = doc;
    this.#direction = direction;
    this.#oas30 = String(doc.openapi).startsWith('3.0');
  }

  /** The validator of the schema at `pointer` (a JSON body's); @throws Error naming the pointer. */
  body(pointer: string): ValidateFunction {
    return this.#compile((this.#plain ??= this.#ajv({})), pointer, (ref) => ref);
  }

  /** The validator of a parameter's value, as `{v: value}`, text coerced to the schema's types (`?n=5` is 5). */
  parameter(pointer: string): ValidateFunction {
    return this.#compile((this.#coercing ??= this.#ajv({ coerceTypes: true })), pointer, (ref) => ({ type: 'object', properties: { v: ref } }));
  }

  #ajv(options: Options): Ajv {
    // Copied when first needed: the copy is changed, and a document without answer schemas needs no second one.
    this.#doc ??= structuredClone(this.#source);
    const Validator = this.#oas30 ? loadAjv().Ajv : loadAjv2020().Ajv2020;
    // No allErrors: ajv stops at the first failure. With it, 4,000,000 wrong-typed array items made as many error
    // objects (600 MiB, 2 s of event loop) for a message that names three.
    const ajv = new Validator({ strict: false, validateSchema: false, code: { regExp: checkedRegExp }, ...options });
    loadFormats()(ajv, FORMATS);
    ajv.removeKeyword('uniqueItems').addKeyword(uniqueItems);
    const refuse = (keyword: string) => () => {
      throw new Error(`${keyword} is JSON Schema 2020-12's (OpenAPI 3.1's), not OpenAPI 3.0's: declare openapi: 3.1.0 to use it`);
    };
    if (this.#oas30) for (const keyword of LATER_KEYWORDS) ajv.addKeyword({ keyword, compile: refuse(keyword) });
    ajv.addSchema(this.#doc, 'oas');
    return ajv;
  }

  #compile(ajv: Ajv, pointer: string, wrap: (ref: object) => object): ValidateFunction {
    this.#prepare(pointer);
    // Errors name the schema being compiled: what fails (a pattern, say) may sit behind a $ref, far from where it applies.
    try {
      return ajv.compile(wrap({ $ref: `oas#${pointer}` }));
    } catch (err) {
      throw new Error(`${pointer}: ${(err as Error).message}`);
    }
  }

  /** Rewrites the schema at `pointer`, and every schema it reaches (subschemas, local $refs) not yet rewritten. */
  #prepare(pointer: string): void {
    const doc = this.#doc!;
    const pending: unknown[] = [nodeAt(doc, `#${pointer}`)];
    const add = (values: unknown[]) => values.forEach((v) => pending.push(v));
    while (pending.length > 0) {
      const schema = pending.pop();
      if (!isNode(schema) || this.#prepared.has(schema)) continue;
      this.#prepared.add(schema);
      if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) pending.push(nodeAt(doc, schema.$ref));
      if (this.#oas30) asOas30(doc, schema, this.#direction);
      // 3.0's alone: ajv would add null to a 3.1 schema's types with it, and refuse a 3.1 schema without a type.
      else delete schema.nullable;
      add(ONE_SCHEMA.map((key) => schema[key]));
      for (const key of SCHEMA_LISTS) if (Array.isArray(schema[key])) add(schema[key]);
      for (const key of SCHEMA_MAPS) if (isNode(schema[key])) add(Object.values(schema[key]));
    }
  }
}

/** OpenAPI 3.0's meaning of `schema`'s keywords in ajv's draft-07 terms, `schema` changed in place. */
function asOas30(doc: Node, schema: Node, direction: Direction): void {
  // Draft 4's boolean exclusiveMinimum makes `minimum` exclusive; draft 7's is the bound itself (ajv refuses a boolean).
  for (const [exclusive, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof schema[exclusive] !== 'boolean') continue;
    if (schema[exclusive] && typeof schema[bound] === 'number') {
      schema[exclusive] = schema[bound];
      delete schema[bound];
    } else delete schema[exclusive];
  }
  // 3.0.3: `nullable` adds null to the types `type` names, and does nothing where there is no `type` (ajv refuses it).
  if (schema.type === undefined) delete schema.nullable;
  // A required readOnly property is required in answers only, a writeOnly one in requests only.
  if (Array.isArray(schema.required)) {
    const waived = flaggedProperties(doc, schema, direction === 'request' ? 'readOnly' : 'writeOnly');
    if (waived.size > 0) schema.required = schema.required.filter((name) => !waived.has(name as string));
  }
}

/** The properties `schema` declares, itself or through `allOf`, with `flag` true (on the property or its $ref target). */
function flaggedProperties(doc: Node, schema: Node, flag: 'readOnly' | 'writeOnly'): Set<string> {
  const names = new Set<string>();
  const seen = new Set<Node>();
  const pending: unknown[] = [schema];
  while (pending.length > 0) {
    for (const s of refChain(doc, pending.pop())) {
      if (seen.has(s)) break;
      seen.add(s);
      for (const [name, property] of Object.entries(isNode(s.properties) ? s.properties : {})) {
        if (refChain(doc, property).some((p) => p[flag] === true)) names.add(name);
      }
      if (Array.isArray(s.allOf)) s.allOf.forEach((member) => pending.push(member));
    }
  }
  return names;
}

/** `node` and the nodes its local `$ref`s lead to, in order (at most 16 hops, as the document's own refs). */
function refChain(doc: Node, node: unknown): Node[] {
  const chain: Node[] = [];
  for (let hops = 0; isNode(node) && hops <= 16 && !chain.includes(node); hops++) {
    chain.push(node);
    node = typeof node.$ref === 'string' && node.$ref.startsWith('#/') ? nodeAt(doc, node.$ref) : undefined;
  }
  return chain;
}
