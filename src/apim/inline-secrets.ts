// Secrets given inline in a stored manifest (a JWT policy's HMAC secret or private key, a credential header sent to an
// embeddings endpoint, a classifier or a callout, or set upstream by AssignMessage): the admin API shows manifests back (GET /v1/manifests), but not these, as it
// never shows a key; and the placeholder it shows instead must not be applied back as if it were the secret.
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

/** Header lists ({name, value}) by kind, as paths under `spec`: AssignMessage sets a model server's credential so. */
const HEADER_LISTS: Record<string, readonly HeaderPlace[]> = { AssignMessage: [{ at: ['set', 'headers'], rendered: true }] };

interface HeaderPlace {
  at: readonly [string, string];
  rendered: boolean;
}

/**
 * A template (`Bearer {kvm.token}`) names where the credential is, as `{env}` does; only a literal holds one. Judged
 * as the renderer reads references: braces around anything else (`sk-9f8e{7d6c}`) are sent as written, a literal;
 * and where nothing is rendered, every value is one.
 */
const literalCredential = (rendered: boolean, name: unknown, value: unknown) =>
  typeof name === 'string' && typeof value === 'string' && CREDENTIAL_HEADER.test(name) && !(rendered && isTemplate(value));

/** Header names that carry credentials: their inline values are secret (an `{env}` reference names, not holds). */
const CREDENTIAL_HEADER = /auth|cookie|token|secret|password|passwd|key|credential|signature/i;

/** Shorter than any HMAC secret the JWT policies accept and not a PEM key, so it can never work as one. */
export const REDACTED = '(redacted)';

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Every inline secret of the spec: where it is (a path under `spec`) and its value. */
function inlineSecrets(kind: string, spec: JsonObject): { path: string[]; value: unknown }[] {
  const out: { path: string[]; value: unknown }[] = [];
  for (const field of Object.hasOwn(SECRET_FIELDS, kind) ? SECRET_FIELDS[kind] : []) {
    const source = spec[field];
    if (isObject(source) && 'value' in source) out.push({ path: [field, 'value'], value: source.value });
  }
  for (const { at: [outer, inner], rendered } of Object.hasOwn(HEADER_MAPS, kind) ? HEADER_MAPS[kind] : []) {
    const parent = spec[outer];
    const headers = isObject(parent) ? parent[inner] : undefined;
    if (!isObject(headers)) continue;
    for (const [name, value] of Object.entries(headers)) if (literalCredential(rendered, name, value)) out.push({ path: [outer, inner, name], value });
  }
  for (const { at: [outer, inner], rendered } of Object.hasOwn(HEADER_LISTS, kind) ? HEADER_LISTS[kind] : []) {
    const parent = spec[outer];
    const list = isObject(parent) ? parent[inner] : undefined;
    if (!Array.isArray(list)) continue;
    list.forEach((h, i) => {
      if (isObject(h) && literalCredential(rendered, h.name, h.value)) out.push({ path: [outer, inner, String(i), 'value'], value: h.value });
    });
  }
  return out;
}

/** `spec` with every inline secret replaced by REDACTED (copies along the changed paths only). */
export function redactInlineSecrets(kind: string, spec: JsonObject): JsonObject {
  const secrets = inlineSecrets(kind, spec);
  if (secrets.length === 0) return spec;
  const out = { ...spec };
  for (const { path } of secrets) {
    let at: JsonObject = out;
    for (const key of path.slice(0, -1)) {
      const next = at[key];
      at = at[key] = (Array.isArray(next) ? [...next] : { ...(next as JsonObject) }) as JsonObject;
    }
    at[path[path.length - 1]] = REDACTED;
  }
  return out;
}

/** The field paths (`spec.secretKey.value`) where a document carries the placeholder instead of a secret. */
export function redactedPlaceholders(kind: string, spec: JsonObject): string[] {
  return inlineSecrets(kind, spec)
    .filter(({ value }) => value === REDACTED)
    .map(({ path }) => `spec.${path.join('.')}`);
}
