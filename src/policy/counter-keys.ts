// Counter key names, in one place so the policies that count and the self-service report that reads agree.
// Policy and operation-set names are DNS-style (no colons); an identifier may hold anything, so it comes last
// before the window start.
import { createHash } from 'node:crypto';

/**
 * Identifiers up to this many UTF-8 bytes stay in the key as they are (keys stay readable, and existing Redis keys
 * keep their names). A longer one is a client's choice (a 16 KiB header) that every counter would hold for its window.
 */
const MAX_VERBATIM_BYTES = 64;

/**
 * The identifier as it appears in a key: itself, or `sha256:` and its digest in hex when longer than 64 bytes. The
 * digest form is 71 bytes, longer than any identifier kept as it is, so the two never name the same counter.
 * @example keyPart('app-1') → 'app-1'; keyPart('x'.repeat(4096)) → 'sha256:2f5a…' (71 characters)
 */
function keyPart(identifier: string): string {
  if (Buffer.byteLength(identifier) <= MAX_VERBATIM_BYTES) return identifier;
  // Of the UTF-16 code units: UTF-8 would turn every lone surrogate (a JSON claim may hold one) into the same U+FFFD.
  return `sha256:${createHash('sha256').update(identifier, 'utf16le').digest('hex')}`;
}

/** Product request quota: per operation set and app (or the Quota policy's identifier). */
export function productQuotaKey(operationSet: string, identifier: string): string {
  return `apim:pq:${operationSet}:${keyPart(identifier)}`;
}

/** Product token quota (llmOperations.llmTokenQuota): per operation set and app. */
export function productTokenKey(operationSet: string, identifier: string): string {
  return `apim:pt:${operationSet}:${keyPart(identifier)}`;
}

/** A policy's own counter: `kind` is a short tag per policy type, `name` its manifest name (or Quota's sharedName). */
export function policyKey(kind: string, name: string, identifier: string): string {
  return `apim:${kind}:${name}:${keyPart(identifier)}`;
}

/** One window's counter (fixed windows): windows never share a counter. */
export function windowKey(base: string, startMs: number): string {
  return `${base}:${startMs}`;
}
