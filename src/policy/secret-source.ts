// Key material and secrets named in manifests: inline values (public keys) or environment variables (anything secret).
// Resolved once, when the configuration loads; errors name the variable, never a value.
import type { KeySource, OutboundHeaders } from '../config/apim-kinds.js';

/** resolveSecret({ env: 'UPSTREAM_TOKEN' }, 'spec.secret') → the variable's value; throws when it is unset or empty. */
export function resolveSecret(source: KeySource, field: string): string {
  if ('value' in source) return source.value;
  const value = process.env[source.env];
  if (value === undefined || value === '') throw new Error(`${field}: environment variable ${source.env} is not set`);
  return value;
}

/** resolveHeaders({ authorization: { env: 'TOKEN' } }, 'spec.embeddings.headers') → the headers with their values. */
export function resolveHeaders(headers: OutboundHeaders, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = typeof value === 'string' ? value : resolveSecret(value, `${field}.${name}`);
  return out;
}
