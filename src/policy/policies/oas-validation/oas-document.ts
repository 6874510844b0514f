// Loading an OpenAPI 3 document (inline object, YAML/JSON text, or a file) and compiling, per path and method,
// the request body schema, the path, query and header parameters and the JSON response schemas (with oas-schemas.ts).
import type { ValidateFunction } from 'ajv';
import { NotRegularFileError, readBounded } from '../../../config/files.js';
import { ConfigError, readDocuments } from '../../../config/manifest.js';
import { compilePathTemplate, type PathTemplate } from './path-template.js';
import { isNode, nodeAt, OasSchemas, type Node } from './oas-schemas.js';
import { isJsonMediaType, mediaTypeOf } from '../../../gateway/media-type.js';

/**
 * How an array parameter carries its items: `repeated` (`?tag=a&tag=b`, a query's default `form` style with
 * `explode`), or the delimiter between them in one value (`?tag=a,b`; headers and path segments: `a,b`).
 */
export type ArrayStyle = 'repeated' | ',' | ' ' | '|';

export interface CompiledParameter {
  in: 'query' | 'header' | 'path';
  name: string;
  required: boolean;
  /** null when the schema is not an array. */
  array: ArrayStyle | null;
  validate: ValidateFunction | null;
}

export interface CompiledOperation {
  body: ValidateFunction | null;
  bodyRequired: boolean;
  parameters: CompiledParameter[];
  /** By status code, `2XX`-style range, or `default`. */
  responses: Map<string, ValidateFunction>;
}

export interface CompiledPath {
  template: string;
  pattern: PathTemplate;
  /** Literal segments first: `/items/new` wins over `/items/{id}`. */
  literals: number;
  operations: Map<string, CompiledOperation>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const PARAMETER_PLACES = new Set(['query', 'header', 'path']);
const DELIMITERS: Record<string, ArrayStyle> = { form: ',', spaceDelimited: ' ', pipeDelimited: '|' };

/** The document as an object, from `openApi` (object or text) or from the `source` file. */
export function loadDocument(openApi: Node | string | undefined, source: string | undefined): Node {
  let doc: unknown = openApi;
  if (source !== undefined) doc = readSource(source);
  if (typeof doc === 'string') doc = parseText(doc, source ?? 'openApi');
  if (!isNode(doc) || typeof doc.openapi !== 'string' || !doc.openapi.startsWith('3.')) throw new Error('not an OpenAPI 3 document (no openapi: 3.x field)');
  if (!isNode(doc.paths)) throw new Error('the OpenAPI document has no paths');
  return doc;
}

/**
 * The `source` file's text, read as manifest files are (a regular file, at most 4 MiB, UTF-8): a FIFO blocked the
 * whole gateway until something wrote to it and /dev/zero filled its memory, from an admin API dry run too. A relative
 * path is the working directory's, for a manifest of the files and of the admin API alike. Whatever keeps the path
 * from being read as a regular file (nothing there, no permission, a directory, a device) is said one way: an admin
 * API client learns no more of the host's paths than whether one names a readable file.
 */
function readSource(source: string): string {
  try {
    return readBounded(source);
  } catch (err) {
    // Too large or not UTF-8: a file the gateway reads, which the operator has to fix as the problem says.
    if (err instanceof ConfigError && !(err instanceof NotRegularFileError)) throw new Error(`spec.source: ${err.problems[0]}`);
    throw new Error(`spec.source: ${source}: not a regular file the gateway can read`);
  }
}

/** A YAML or JSON text read as the manifests are, so its nesting and aliases are bounded as theirs are. */
function parseText(text: string, label: string): unknown {
  const { raws, problems } = readDocuments(text, label);
  if (problems.length > 0) throw new Error(problems[0].line);
  if (raws.length !== 1) throw new Error(`${label}: holds ${raws.length} documents, not the one OpenAPI document`);
  return raws[0].raw;
}

/** Follows local `$ref`s: the node and the JSON pointer it lives at (so ajv resolves its own refs from there). */
function deref(doc: Node, node: unknown, pointer: string): { node: unknown; pointer: string } {
  for (let hops = 0; isNode(node) && typeof node.$ref === 'string' && hops < 16; hops++) {
    const ref = node.$ref;
    if (!ref.startsWith('#/')) throw new Error(`${pointer}: only local $refs are supported (${ref})`);
    pointer = ref.slice(1);
    node = nodeAt(doc, ref);
    if (node === undefined) throw new Error(`${ref} does not resolve`);
  }
  return { node, pointer };
}

/**
 * The JSON media type of a `content` map: `application/json` with or without parameters (`; charset=utf-8`), else
 * the first structured-syntax `+json` type (`application/problem+json`, RFC 6839).
 */
function jsonContentKey(content: Node): string | undefined {
  const keys = Object.keys(content);
  return keys.find((k) => mediaTypeOf(k) === 'application/json') ?? keys.find((k) => isJsonMediaType(k));
}

/** The pointer to the schema of the JSON media type in `content` (which lives at `pointer`), when there is one. */
function jsonSchemaAt(content: unknown, pointer: string): string | undefined {
  if (!isNode(content)) return undefined;
  const key = jsonContentKey(content);
  const media = key === undefined ? undefined : content[key];
  return isNode(media) && media.schema !== undefined ? `${pointer}/content/${escapePointer(key!)}/schema` : undefined;
}

/** How the parameter `p` (OpenAPI's `in`, `style`, `explode`) spells an array, or null when its schema is none. */
function arrayStyle(doc: Node, p: Node, schemaAt: string): ArrayStyle | null {
  const { node: schema } = deref(doc, p.schema, schemaAt);
  if (!isNode(schema) || schema.type !== 'array') return null;
  if (p.in !== 'query') return ',';
  const style = typeof p.style === 'string' ? p.style : 'form';
  // OpenAPI: explode defaults to true for the form style only.
  const explode = typeof p.explode === 'boolean' ? p.explode : style === 'form';
  return explode ? 'repeated' : (DELIMITERS[style] ?? ',');
}

/** Every path and operation of the document, compiled; @throws Error naming the part that cannot be compiled. */
export function compileDocument(doc: Node): CompiledPath[] {
  // 3.0's readOnly and writeOnly make a schema's required properties differ between requests and answers.
  const requests = new OasSchemas(doc, 'request');
  const answers = new OasSchemas(doc, 'response');
  const out: CompiledPath[] = [];
  for (const [template, rawItem] of Object.entries(doc.paths as Node)) {
    const base = `/paths/${escapePointer(template)}`;
    const { node: item, pointer: itemAt } = deref(doc, rawItem, base);
    if (!isNode(item)) continue;
    const operations = new Map<string, CompiledOperation>();
    for (const method of METHODS) {
      const op = item[method];
      if (!isNode(op)) continue;
      const at = `${itemAt}/${method}`;
      const parameters: CompiledParameter[] = [];
      const declared = [
        ...(Array.isArray(item.parameters) ? item.parameters.map((p, i) => [p, `${itemAt}/parameters/${i}`] as const) : []),
        ...(Array.isArray(op.parameters) ? op.parameters.map((p, i) => [p, `${at}/parameters/${i}`] as const) : []),
      ];
      for (const [raw, rawAt] of declared) {
        const { node: p, pointer } = deref(doc, raw, rawAt);
        if (!isNode(p) || !PARAMETER_PLACES.has(p.in as string) || typeof p.name !== 'string') continue;
        const name = p.in === 'header' ? p.name.toLowerCase() : p.name;
        const validate = isNode(p.schema) ? requests.parameter(`${pointer}/schema`) : null;
        const array = isNode(p.schema) ? arrayStyle(doc, p, `${pointer}/schema`) : null;
        // An operation's parameter replaces the path item's of the same name.
        const same = parameters.findIndex((q) => q.in === p.in && q.name === name);
        const compiled = { in: p.in, name, required: p.required === true, array, validate } as CompiledParameter;
        if (same >= 0) parameters[same] = compiled;
        else parameters.push(compiled);
      }
      let body: ValidateFunction | null = null;
      let bodyRequired = false;
      if (op.requestBody !== undefined) {
        const { node: rb, pointer } = deref(doc, op.requestBody, `${at}/requestBody`);
        if (isNode(rb)) {
          bodyRequired = rb.required === true;
          const at = jsonSchemaAt(rb.content, pointer);
          if (at !== undefined) body = requests.body(at);
        }
      }
      const responses = new Map<string, ValidateFunction>();
      for (const [code, rawResponse] of Object.entries(isNode(op.responses) ? op.responses : {})) {
        const { node: r, pointer } = deref(doc, rawResponse, `${at}/responses/${escapePointer(code)}`);
        const schemaPointer = isNode(r) ? jsonSchemaAt(r.content, pointer) : undefined;
        if (schemaPointer !== undefined) responses.set(code.toUpperCase(), answers.body(schemaPointer));
      }
      operations.set(method.toUpperCase(), { body, bodyRequired, parameters, responses });
    }
    out.push({ template, pattern: compilePathTemplate(template), literals: template.split('/').filter((s) => s && !s.startsWith('{')).length, operations });
  }
  return out.sort((a, b) => b.literals - a.literals);
}
