// Key material and secrets named in manifests: inline values (public keys) or environment variables (anything secret).
// Resolved once, when the configuration loads; errors name the variable, never a value.
import { HEADER_TEXT, HEADER_TEXT_PROBLEM, type KeySource, type OutboundHeaders } from '../config/apim-kinds.js';

/**
 * resolveSecret({ env: 'UPSTREAM_TOKEN' }, 'spec.secret') → the variable's value; throws when it is unset or empty.
 * Surrounding white space is dropped, as from TOLLGATE_ADMIN_TOKEN: a Secret made with `kubectl create secret
 * --from-file` ends in a newline, which made every request sent with it a 400.
 */
export function resolveSecret(source: KeySource, field: string): string {
  if ('value' in source) return source.value;
  const value = process.env[source.env]?.trim();
  if (value === undefined || value === '') throw new Error(`${field}: environment variable ${source.env} is not set`);
  return value;
}

/**
 * resolveSecret for a value sent as a header: one a header cannot carry (an inner line break) fails the
 * configuration, naming the variable, rather than every request it would go out with.
 */
export function resolveHeaderSecret(source: KeySource, field: string): string {
  const value = resolveSecret(source, field);
  if (!HEADER_TEXT.test(value)) {
    const name = 'env' in source ? `environment variable ${source.env}` : 'the value';
    throw new Error(`${field}: ${name} must not hold ${HEADER_TEXT_PROBLEM}`);
  }
  return value;
}

/** resolveHeaders({ authorization: { env: 'TOKEN' } }, 'spec.embeddings.headers') → the headers with their values. */
export function resolveHeaders(headers: OutboundHeaders, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = typeof value === 'string' ? value : resolveHeaderSecret(value, `${field}.${name}`);
  return out;
}
