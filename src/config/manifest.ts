// Parsing manifests: multi-document YAML (or JSON) text → validated documents, with errors that name
// the file, the document's index, its kind/name and the field path.
import { z } from 'zod';
import { MAX_JSON_DEPTH } from '../lib/json-depth.js';
import { KINDS } from './kinds.js';
import { MAX_ALIAS_EXPANSION, expansionOf } from './yaml-expansion.js';
import { parseYamlStream } from './yaml-stream.js';

export interface Manifest<S = unknown> {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: S;
  /** Where it came from: a file path, or "admin-api". */
  source: string;
  index: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/**
 * metadata.name, and the name of anything the admin API creates that a manifest can name back (products, apps,
 * key-value maps): so what GET /v1/manifests exports, apply takes back.
 */
export const resourceName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9A-Z]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/, 'must be letters, digits and - _ . (starting and ending with a letter or digit)');

const envelope = z
  .object({
    apiVersion: z.string().min(1),
    kind: z.string().min(1),
    metadata: z
      .object({
        name: resourceName,
        namespace: z.string().optional(),
        labels: z.record(z.string(), z.string()).optional(),
        annotations: z.record(z.string(), z.string()).optional(),
      })
      .passthrough(),
    // Said plainly: zod's own words for a missing unknown() are "expected nonoptional".
    spec: z.unknown().nonoptional('required'),
    status: z.unknown().optional(),
  })
  .strict();

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(document)';
}

/**
 * The most problems one document reports, then one line counting the rest (as the admin API bounds its `details`):
 * a list of 300,000 bad items made a line each, and a million a message longer than a string can be.
 */
export const MAX_DOCUMENT_PROBLEMS = 100;

function describeIssues(where: string, error: z.ZodError, prefix: string): string[] {
  const lines = error.issues.slice(0, MAX_DOCUMENT_PROBLEMS).map((i) => `${where}: ${fieldPath([...(prefix ? [prefix] : []), ...i.path])}: ${i.message}`);
  const rest = error.issues.length - lines.length;
  if (rest > 0) lines.push(`${where}: and ${rest} more, not listed`);
  return lines;
}

/**
 * ` (Kind/name)` for an error's location, when the document has a kind and a valid name; else nothing (a name that is
 * the error may hold anything, `): ` too, which the admin API splits a problem at).
 */
function label(kind: unknown, name: unknown): string {
  return typeof kind === 'string' && resourceName.safeParse(name).success ? ` (${kind}/${name as string})` : '';
}

/** Validates one raw document; returns the manifest or the problems found. */
export function validateDocument(raw: unknown, source: string, index: number): { manifest?: Manifest; problems: string[] } {
  const base = `${source} document ${index}`;
  const env = envelope.safeParse(raw);
  if (!env.success) {
    // A document wrong around its spec (a `specs:` typo, no apiVersion) is still named when it can be.
    const doc = raw as { kind?: unknown; metadata?: { name?: unknown } } | null | undefined;
    return { problems: describeIssues(`${base}${label(doc?.kind, doc?.metadata?.name)}`, env.error, '') };
  }
  const { apiVersion, kind, metadata, spec } = env.data;
  const where = `${base} (${kind}/${metadata.name})`;
  const def = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!def) return { problems: [`${where}: kind: unknown kind "${kind}" (known: ${Object.keys(KINDS).join(', ')})`] };
  if (!def.apiVersions.includes(apiVersion)) {
    return { problems: [`${where}: apiVersion: "${apiVersion}" is not served for ${kind} (use ${def.apiVersions.join(' or ')})`] };
  }
  const parsed = def.spec.safeParse(spec ?? {});
  if (!parsed.success) return { problems: describeIssues(where, parsed.error, 'spec') };
  return { manifest: { apiVersion, kind, metadata, spec: parsed.data, source, index }, problems: [] };
}

export interface RawDocument {
  raw: unknown;
  /** The document's position in its file (empty and broken ones counted), or an item's in a list document. */
  index: number;
}

export interface DocumentReadProblem {
  index: number;
  /** e.g. `YAML: Excessive alias count indicates a resource exhaustion attack` */
  message: string;
  /** The whole problem on one line: `<source> document <i>[ (<kind>/<name>)]: <message>`. */
  line: string;
}

/**
 * The documents of a multi-document YAML text (JSON is YAML too; a JSON array is a list of documents), read as every
 * manifest reader reads them (`serve`, `apply`, the admin API's YAML bodies), with what could not be read. Empty
 * documents are skipped but counted, as Helm output has them. A document's index is its position, a list's items each
 * taking one: a JSON array's items are numbered as in the array, and no two manifests of one text share a number.
 */
export function readDocuments(text: string, source: string): { raws: RawDocument[]; problems: DocumentReadProblem[] } {
  const raws: RawDocument[] = [];
  const problems: DocumentReadProblem[] = [];
  const problem = (index: number, message: string, label = '') => problems.push({ index, message, line: `${source} document ${index}${label}: ${message}` });
  // merge: kubectl reads `<<: *anchor` merge keys (YAML 1.1); the 1.2 core schema took `<<` for a field.
  const { docs, tooDeep, linePos } = parseYamlStream(text, { merge: true });
  let next = 0;
  docs.forEach((doc) => {
    const i = next++;
    // The first error only: what follows it is mostly its echo, and a text of errors has one per byte.
    const [error] = doc.errors;
    if (error) {
      const at = error.pos[0] === -1 ? undefined : linePos(error.pos[0]);
      problem(i, `YAML: ${error.message.split('\n')[0]}${at ? ` at line ${at.line}, column ${at.col}` : ''}`);
      return;
    }
    // Kind and name are read from the tree, without resolving anything, for a document that is not built.
    const named = () => label(doc.get('kind'), doc.getIn(['metadata', 'name']));
    let value: unknown;
    try {
      value = doc.toJS();
    } catch (err) {
      // Building the value throws: an alias expanded past the limit (a "billion laughs" document), a merge key
      // whose source is not a map.
      problem(i, `YAML: ${(err as Error).message}`, named());
      return;
    }
    // Building shares an alias's value rather than copying it, but validation walks every copy: what is bounded.
    const size = expansionOf(doc);
    if ('cycle' in size) {
      problem(i, `YAML: alias *${size.cycle} is inside the node it names`, named());
      return;
    }
    if (size.expanded > MAX_ALIAS_EXPANSION * size.written) {
      problem(i, `YAML: aliases expand the document to ${size.expanded} values, more than ${MAX_ALIAS_EXPANSION} times the ${size.written} it writes`, named());
      return;
    }
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      value.forEach((raw, j) => raws.push({ raw, index: i + j }));
      next = i + Math.max(1, value.length);
    } else raws.push({ raw: value, index: i });
  });
  if (tooDeep) problem(next, `YAML: nests sequences and mappings more than ${MAX_JSON_DEPTH} levels deep at line ${tooDeep.line}, column ${tooDeep.col}`);
  return { raws, problems };
}

/** Parses and validates multi-document YAML; a ConfigError lists every problem of every document. */
export function parseManifests(text: string, source: string): Manifest[] {
  const { raws, problems: unread } = readDocuments(text, source);
  const problems = unread.map((p) => p.line);
  const out: Manifest[] = [];
  for (const { raw, index } of raws) {
    const r = validateDocument(raw, source, index);
    if (r.manifest) out.push(r.manifest);
    for (const p of r.problems) problems.push(p);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/**
 * A manifest built in code (tests, benchmarks, the demo) in the kind's first served apiVersion, validated like a file's.
 * @example manifestOf('InferencePool', 'pool', { endpoints: ['http://127.0.0.1:8000'] })
 * @throws ConfigError naming the field.
 */
export function manifestOf(kind: string, name: string, spec: unknown, source = 'code'): Manifest {
  const apiVersion = Object.hasOwn(KINDS, kind) ? KINDS[kind].apiVersions[0] : 'unknown';
  const r = validateDocument({ apiVersion, kind, metadata: { name }, spec }, source, 0);
  if (!r.manifest) throw new ConfigError(r.problems);
  return r.manifest;
}
