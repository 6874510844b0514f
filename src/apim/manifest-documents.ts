// Reading manifests for `apply` (the admin route and the CLI alike): multi-document YAML or a JSON array,
// apim.googleapis.com/v1 kinds only, each validated by the config kinds; problems name the document and field path.
import { APIM_API_VERSION } from '../config/apim-kinds.js';
import { KINDS } from '../config/kinds.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../lib/json-depth.js';
import { readDocuments, validateDocument, type Manifest, type RawDocument } from '../config/manifest.js';
// codec.js, not the store's index: the CLI's apply reads manifests without loading the database drivers.
import { UNSTORABLE_TEXT_MESSAGE, isStorableText, unstorableTextPaths, type JsonObject } from '../store/codec.js';
import { REDACTED, redactedPlaceholders } from './inline-secrets.js';

export interface ApimDocument {
  /** Validated, with defaults applied. */
  manifest: Manifest;
  /** The document as written: what is sent and stored, so applying the same text again is a no-op. */
  raw: JsonObject;
  /** `raw.spec` (an empty spec for a document without one). */
  spec: JsonObject;
  /** Index among the documents, as in DocumentProblem. */
  index: number;
}

export interface DocumentProblem {
  /**
   * The document's position in its text, empty ones counted (as `serve` counts them), or an item's in a list (a JSON
   * array); absent for a problem with the text as a whole.
   */
  document?: number;
  /** Inside the document, e.g. `spec.displayName`; empty for the document as a whole. */
  path: string;
  message: string;
  /** The whole problem on one line, naming the source, document, kind/name and field path. */
  line: string;
}

export interface ApimDocuments {
  documents: ApimDocument[];
  problems: DocumentProblem[];
}

/** Kinds of the gateway itself (pools, models, routes, settings) are owned by --config files. */
function isApimKind(kind: string): boolean {
  return Object.hasOwn(KINDS, kind) && KINDS[kind].apiVersions.includes(APIM_API_VERSION);
}

export const APIM_KINDS = Object.keys(KINDS).filter(isApimKind);

/**
 * What one admin API request may hold: the YAML parser reads about 1.6 MB/s on the event loop that also serves
 * requests (a 10 MiB body stalled the data plane for seconds), JSON.parse about 100 MB/s; and each document is
 * validated and written in one transaction.
 */
export interface DocumentLimits {
  maxYamlBytes: number;
  maxDocuments: number;
}

export const ADMIN_DOCUMENT_LIMITS: DocumentLimits = { maxYamlBytes: 1024 * 1024, maxDocuments: 10_000 };

function bodyProblem(source: string, message: string): DocumentProblem {
  return { path: '', message, line: `${source}: ${message}` };
}

/**
 * A JSON text's documents (an array is a list of them), what is wrong with it (`parsed`: it is JSON, so YAML would
 * not read it better), or undefined when it does not look like JSON (YAML then). Read as JSON.parse reads it: a key
 * given twice keeps its last value.
 */
function jsonDocuments(text: string): { documents: unknown[] } | { error: string; parsed: boolean } | undefined {
  const first = text.trimStart()[0];
  if (first !== '[' && first !== '{') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: (err as Error).message, parsed: false };
  }
  if (nestsDeeperThan(Buffer.from(text), MAX_JSON_DEPTH)) return { error: `nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`, parsed: true };
  return { documents: Array.isArray(value) ? value : [value] };
}

/**
 * Documents → plain values; a JSON array is a list of documents. Files (`tollgate apply`) are read by the reader
 * `serve` uses; the admin API (`limits`) reads a JSON body with JSON.parse, ~60 times faster on its event loop.
 */
function splitDocuments(text: string, source: string, limits?: DocumentLimits): { raws: RawDocument[]; problems: DocumentProblem[] } {
  const raws: RawDocument[] = [];
  const problems: DocumentProblem[] = [];
  const json = limits ? jsonDocuments(text) : undefined;
  const tooLongForYaml = limits !== undefined && Buffer.byteLength(text) > limits.maxYamlBytes;
  // Not push(...documents): spreading a huge array overflows the stack.
  if (json && 'documents' in json) json.documents.forEach((raw, index) => raws.push({ raw, index }));
  // Text that looks like JSON but is not may still be YAML (flow style, `{kind: X}`): its JSON error only when the
  // YAML parser will not be asked.
  else if (json && (tooLongForYaml || json.parsed)) problems.push(bodyProblem(source, `JSON: ${json.error}`));
  else if (tooLongForYaml) {
    problems.push(bodyProblem(source, `a YAML body may hold at most ${limits.maxYamlBytes} bytes; send JSON (as tollgate apply and delete do) or fewer documents`));
  } else {
    const read = readDocuments(text, source);
    for (const r of read.raws) raws.push(r);
    for (const p of read.problems) problems.push({ document: p.index, path: '', message: p.message, line: p.line });
  }
  if (limits && raws.length > limits.maxDocuments) {
    return { raws: [], problems: [bodyProblem(source, `at most ${limits.maxDocuments} documents per request, not ${raws.length}; split them`)] };
  }
  return { raws, problems };
}

/**
 * validateDocument writes `<source> document <i>[ (<kind>/<name>)]: <field path>: <message>`; the admin API answers
 * with the path and message apart, so clients (and the CLI) can point at the field.
 */
function splitProblem(line: string, prefix: string): { path: string; message: string } {
  let rest = line.startsWith(prefix) ? line.slice(prefix.length) : line;
  if (rest.startsWith(' (')) rest = rest.slice(rest.indexOf('): ') + 1);
  rest = rest.replace(/^: /, '');
  const at = rest.indexOf(': ');
  if (at < 0) return { path: '', message: rest };
  const path = rest.slice(0, at);
  return { path: path === '(document)' ? '' : path, message: rest.slice(at + 2) };
}

/** `spec.attributes[0].value`, as validateDocument spells field paths. */
function documentPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function envelope(raw: unknown): { kind: unknown; name: unknown } {
  const r = (raw ?? {}) as { kind?: unknown; metadata?: { name?: unknown } };
  return { kind: r.kind, name: r.metadata?.name };
}

/**
 * Why `kind` cannot be applied or deleted through the admin API; undefined for an apim.googleapis.com/v1 kind (own
 * keys only, so "toString" is not taken for a kind).
 */
export function kindProblem(kind: string): string | undefined {
  if (isApimKind(kind)) return undefined;
  if (Object.hasOwn(KINDS, kind)) return `${kind} configures the gateway itself: it belongs in --config files, not in the admin API`;
  return `unknown kind "${kind}" (the admin API takes ${APIM_KINDS.join(', ')})`;
}

/** What a request names: its documents' kind and metadata.name, in request order. */
export interface RequestTarget {
  kind: string;
  name: string;
  /** The document's index in its text, empty documents counted, as its read problems name it; else its position. */
  index?: number;
}

/** `[i]`: the request document a problem is about, numbered as problems found while reading it were. */
export function requestDocumentPath(targets: readonly RequestTarget[], i: number): string {
  return `[${targets[i]?.index ?? i}]`;
}

export interface ApimTarget {
  kind: string;
  name: string;
  /** Index among the documents, as in DocumentProblem. */
  index: number;
}

/**
 * What `delete` reads from the same documents apply takes: kind and metadata.name only, so an object whose spec this
 * version no longer accepts (stored by an older one) can still be deleted by the file that created it.
 */
export function readApimTargets(text: string, source: string, limits?: DocumentLimits): { targets: ApimTarget[]; problems: DocumentProblem[] } {
  const { raws, problems } = splitDocuments(text, source, limits);
  const targets: ApimTarget[] = [];
  const seen = new Map<string, number>();
  raws.forEach(({ raw, index: i }) => {
    const { kind, name } = envelope(raw);
    const problem = (path: string, message: string) => problems.push({ document: i, path, message, line: `${source} document ${i} (${String(kind)}/${String(name)}): ${path}: ${message}` });
    if (typeof kind !== 'string') return problem('kind', 'a kind is required');
    const wrongKind = kindProblem(kind);
    if (wrongKind) return problem('kind', wrongKind);
    if (typeof name !== 'string' || name === '') return problem('metadata.name', 'a name is required');
    if (!isStorableText(name)) return problem('metadata.name', UNSTORABLE_TEXT_MESSAGE);
    const first = seen.get(`${kind}/${name}`);
    if (first !== undefined) return problem('metadata.name', `${kind}/${name} is also named in document ${first}`);
    seen.set(`${kind}/${name}`, i);
    targets.push({ kind, name, index: i });
  });
  return { targets, problems };
}

export function readApimDocuments(text: string, source: string, limits?: DocumentLimits): ApimDocuments {
  const { raws, problems } = splitDocuments(text, source, limits);
  const documents: ApimDocument[] = [];
  const seen = new Map<string, number>();
  raws.forEach(({ raw, index: i }) => {
    const prefix = `${source} document ${i}`;
    const { kind, name } = envelope(raw);
    const where = `${prefix} (${String(kind)}/${String(name)})`;
    const problem = (path: string, message: string) => problems.push({ document: i, path, message, line: `${where}: ${path}: ${message}` });
    // Checked here, before validation, to list just the kinds apply takes.
    const wrongKind = typeof kind === 'string' ? kindProblem(kind) : undefined;
    if (wrongKind) return problem('kind', wrongKind);
    // Strings PostgreSQL cannot store (NUL, unpaired surrogates) would fail the write with an error, not a problem.
    const unstorable = unstorableTextPaths(raw);
    if (unstorable.length > 0) {
      for (const path of unstorable) problem(documentPath(path), UNSTORABLE_TEXT_MESSAGE);
      return;
    }
    const placeholders = typeof kind === 'string' && raw !== null && typeof raw === 'object' ? redactedPlaceholders(kind, ((raw as JsonObject).spec ?? {}) as JsonObject) : [];
    if (placeholders.length > 0) {
      for (const path of placeholders) problem(path, `"${REDACTED}" is what GET shows in place of a key: give the key itself, or {env: NAME}`);
      return;
    }
    const checked = validateDocument(raw, source, i);
    for (const line of checked.problems) problems.push({ document: i, ...splitProblem(line, prefix), line });
    if (!checked.manifest) return;
    const key = `${checked.manifest.kind}/${checked.manifest.metadata.name}`;
    const first = seen.get(key);
    if (first !== undefined) {
      problem('metadata.name', `${key} is also defined in document ${first}`);
      return;
    }
    seen.set(key, i);
    const doc = raw as JsonObject;
    documents.push({ manifest: checked.manifest, raw: doc, spec: (doc.spec ?? {}) as JsonObject, index: i });
  });
  return { documents, problems };
}
