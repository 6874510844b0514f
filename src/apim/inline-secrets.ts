// Secrets given inline in a stored manifest (a JWT policy's HMAC secret or private key, a credential header sent to an
// embeddings endpoint, a classifier or a callout, a credential AssignMessage sets upstream as a header, query parameter
// or JSON field, a credential query parameter of a callout's URL): the admin API shows manifests back (GET
// /v1/manifests), but not these, as it never shows a key; and the placeholder it shows instead must not be applied back
// as if it were the secret.
import { isTemplate } from '../policy/template.js';
import type { JsonObject } from '../store/index.js';

/** Fields holding `{value}` (inline) or `{env}` key sources whose inline value is secret, by kind. */
const SECRET_FIELDS: Record<string, readonly string[]> = { VerifyJWT: ['secretKey'], GenerateJWT: ['secretKey', 'privateKey'] };

/**
 * Header maps (name → value or `{env}`) of requests tollgate makes itself, by kind, as paths under `spec`; `rendered`:
 * their values are templates (ServiceCallout's), where the others are sent exactly as written.
 */
const HEADER_MAPS: Record<string, readonly HeaderPlace[]> = {
  SemanticCacheLookup: [{ at: ['embeddings', 'headers'], rendered: false }],
  SanitizeUserPrompt: [{ at: ['classifier', 'headers'], rendered: false }],
  SanitizeModelResponse: [{ at: ['classifier', 'headers'], rendered: false }],
  ServiceCallout: [{ at: ['request', 'headers'], rendered: true }],
};

/**
 * Lists of named values by kind, as paths under `spec`: AssignMessage sets a model server's credential so, as a header,
 * a query parameter (`?key=`) or a JSON field (by the last segment of its path: `auth.api_key`).
 */
const NAMED_LISTS: Record<string, readonly ListPlace[]> = {
  AssignMessage: [
    { at: ['set', 'headers'], rendered: true, nameOf: (item) => item.name },
    { at: ['set', 'queryParams'], rendered: true, nameOf: (item) => item.name },
    { at: ['set', 'jsonFields'], rendered: true, nameOf: (item) => (typeof item.path === 'string' ? item.path.split('.').at(-1) : undefined) },
  ],
};

/** URLs (templates) by kind, as paths under `spec`, whose query parameters may carry a credential (`?access_token=`). */
const URLS: Record<string, readonly (readonly [string, string])[]> = { ServiceCallout: [['request', 'url']] };

interface HeaderPlace {
  at: readonly [string, string];
  rendered: boolean;
}

interface ListPlace extends HeaderPlace {
  nameOf: (item: JsonObject) => unknown;
}

/**
 * A template (`Bearer {kvm.token}`) names where the credential is, as `{env}` does; only a literal holds one. Judged
 * as the renderer reads references: braces around anything else (`sk-9f8e{7d6c}`) are sent as written, a literal;
 * and where nothing is rendered, every value is one.
 */
const literalCredential = (rendered: boolean, name: unknown, value: unknown) =>
  typeof name === 'string' && typeof value === 'string' && CREDENTIAL_NAME.test(name) && !(rendered && isTemplate(value));

/** Names (of headers, query parameters, JSON fields) that carry credentials: their inline values are secret. */
const CREDENTIAL_NAME = /auth|cookie|token|secret|password|passwd|key|credential|signature/i;

/** A query string's name or value as it reads (`%5F` is `_`, `+` a space); text that does not decode, as written. */
function decodeQueryPart(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** Where a URL's query parameters with literal credentials have their values: [start, end) offsets into `url`. */
function credentialQueryValues(url: string): { start: number; end: number; value: string }[] {
  const query = url.indexOf('?');
  if (query < 0) return [];
  const hash = url.indexOf('#', query);
  const out: { start: number; end: number; value: string }[] = [];
  let at = query + 1;
  for (const part of url.slice(at, hash < 0 ? url.length : hash).split('&')) {
    const eq = part.indexOf('=');
    const value = part.slice(eq + 1);
    if (eq >= 0 && literalCredential(true, decodeQueryPart(part.slice(0, eq)), value)) out.push({ start: at + eq + 1, end: at + part.length, value: decodeQueryPart(value) });
    at += part.length + 1;
  }
  return out;
}

/** The URL with each literal credential of its query replaced by REDACTED (the rest as written, templates too). */
function redactQuery(url: string, values: readonly { start: number; end: number }[]): string {
  let out = '';
  let at = 0;
  for (const { start, end } of values) {
    out += url.slice(at, start) + REDACTED;
    at = end;
  }
  return out + url.slice(at);
}

/** Shorter than any HMAC secret the JWT policies accept and not a PEM key, so it can never work as one. */
export const REDACTED = '(redacted)';

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * An inline secret: where it is (a path under `spec`), what GET shows there instead, and whether the document holds
 * that already (the placeholder, applied back).
 */
interface InlineSecret {
  path: string[];
  shown: string;
  placeholder: boolean;
}

const wholeValue = (path: string[], value: unknown): InlineSecret => ({ path, shown: REDACTED, placeholder: value === REDACTED });

/** Every inline secret of the spec. */
function inlineSecrets(kind: string, spec: JsonObject): InlineSecret[] {
  const out: InlineSecret[] = [];
  for (const field of Object.hasOwn(SECRET_FIELDS, kind) ? SECRET_FIELDS[kind] : []) {
    const source = spec[field];
    if (isObject(source) && 'value' in source) out.push(wholeValue([field, 'value'], source.value));
  }
  for (const { at: [outer, inner], rendered } of Object.hasOwn(HEADER_MAPS, kind) ? HEADER_MAPS[kind] : []) {
    const parent = spec[outer];
    const headers = isObject(parent) ? parent[inner] : undefined;
    if (!isObject(headers)) continue;
    for (const [name, value] of Object.entries(headers)) if (literalCredential(rendered, name, value)) out.push(wholeValue([outer, inner, name], value));
  }
  for (const { at: [outer, inner], rendered, nameOf } of Object.hasOwn(NAMED_LISTS, kind) ? NAMED_LISTS[kind] : []) {
    const parent = spec[outer];
    const list = isObject(parent) ? parent[inner] : undefined;
    if (!Array.isArray(list)) continue;
    list.forEach((item, i) => {
      if (isObject(item) && literalCredential(rendered, nameOf(item), item.value)) out.push(wholeValue([outer, inner, String(i), 'value'], item.value));
    });
  }
  for (const [outer, inner] of Object.hasOwn(URLS, kind) ? URLS[kind] : []) {
    const parent = spec[outer];
    const url = isObject(parent) ? parent[inner] : undefined;
    const values = typeof url === 'string' ? credentialQueryValues(url) : [];
    // Only the credentials' values: the rest of the URL (host, path, other parameters) is what a reader needs.
    if (values.length > 0) out.push({ path: [outer, inner], shown: redactQuery(url as string, values), placeholder: values.some((v) => v.value === REDACTED) });
  }
  return out;
}

/** `spec` with every inline secret replaced by what GET shows of it (copies along the changed paths only). */
export function redactInlineSecrets(kind: string, spec: JsonObject): JsonObject {
  const secrets = inlineSecrets(kind, spec);
  if (secrets.length === 0) return spec;
  const out = { ...spec };
  for (const { path, shown } of secrets) {
    let at: JsonObject = out;
    for (const key of path.slice(0, -1)) {
      const next = at[key];
      at = at[key] = (Array.isArray(next) ? [...next] : { ...(next as JsonObject) }) as JsonObject;
    }
    at[path[path.length - 1]] = shown;
  }
  return out;
}

/** The field paths (`spec.secretKey.value`) where a document carries the placeholder instead of a secret. */
export function redactedPlaceholders(kind: string, spec: JsonObject): string[] {
  return inlineSecrets(kind, spec)
    .filter(({ placeholder }) => placeholder)
    .map(({ path }) => `spec.${path.join('.')}`);
}
