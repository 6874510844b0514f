// Counter key names, in one place so the policies that count and the self-service report that reads agree.
// Policy and operation-set names are DNS-style (no colons); an identifier may hold anything, so it comes last
// before the window start.

/** Product request quota: per operation set and app (or the Quota policy's identifier). */
export function productQuotaKey(operationSet: string, identifier: string): string {
  return `apim:pq:${operationSet}:${identifier}`;
}

/** Product token quota (llmOperations.llmTokenQuota): per operation set and app. */
export function productTokenKey(operationSet: string, identifier: string): string {
  return `apim:pt:${operationSet}:${identifier}`;
}

/** A policy's own counter: `kind` is a short tag per policy type, `name` its manifest name (or Quota's sharedName). */
export function policyKey(kind: string, name: string, identifier: string): string {
  return `apim:${kind}:${name}:${identifier}`;
}

/** One window's counter (fixed windows): windows never share a counter. */
export function windowKey(base: string, startMs: number): string {
  return `${base}:${startMs}`;
}
