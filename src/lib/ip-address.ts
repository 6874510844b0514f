// Client addresses as the socket gives them, in the one form lookups and forwarded headers use.
import { isIP } from 'node:net';

/** '::ffff:10.0.0.1' (how a dual-stack socket reports IPv4 peers) → '10.0.0.1'; undefined when not an address. */
export function normalizeAddress(raw: string): string | undefined {
  const a = raw.trim().toLowerCase();
  const mapped = a.startsWith('::ffff:') ? a.slice(7) : a;
  if (isIP(mapped) === 4) return mapped;
  return isIP(a) === 6 ? a : undefined;
}
