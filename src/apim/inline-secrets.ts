// Key material given inline in a stored manifest (a JWT policy's HMAC secret or private key): the admin API shows
// manifests back (GET /v1/manifests), but not these, as it never shows a key; and the placeholder it shows instead
// must not be applied back as if it were the key.
import type { JsonObject } from '../store/index.js';

/** Fields holding `{value}` (inline) or `{env}` key sources whose inline value is secret, by kind. */
const SECRET_FIELDS: Record<string, readonly string[]> = { VerifyJWT: ['secretKey'], GenerateJWT: ['secretKey', 'privateKey'] };

/** Shorter than any HMAC secret the JWT policies accept and not a PEM key, so it can never work as one. */
export const REDACTED = '(redacted)';

function inlineValues(kind: string, spec: JsonObject): { field: string; value: unknown }[] {
  const fields = Object.hasOwn(SECRET_FIELDS, kind) ? SECRET_FIELDS[kind] : [];
  return fields.flatMap((field) => {
    const source = spec[field];
    return source !== null && typeof source === 'object' && !Array.isArray(source) && 'value' in source ? [{ field, value: source.value }] : [];
  });
}

/** `spec` with every inline secret replaced by REDACTED (`{env}` references are kept: they name, not hold). */
export function redactInlineSecrets(kind: string, spec: JsonObject): JsonObject {
  const inline = inlineValues(kind, spec);
  if (inline.length === 0) return spec;
  const out = { ...spec };
  for (const { field } of inline) out[field] = { value: REDACTED };
  return out;
}

/** The field paths (`spec.secretKey.value`) where a document carries the placeholder instead of a key. */
export function redactedPlaceholders(kind: string, spec: JsonObject): string[] {
  return inlineValues(kind, spec)
    .filter(({ value }) => value === REDACTED)
    .map(({ field }) => `spec.${field}.value`);
}
