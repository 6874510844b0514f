// Partial updates: fields a patch leaves undefined keep their current value.

export function applyPatch<T extends object>(current: T, patch: Partial<T>): T {
  const next = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) (next as Record<string, unknown>)[key] = value;
  }
  return next;
}

/** The fields a patch sets, for the audit row. */
export function patchedFields(patch: object): string[] {
  return Object.entries(patch)
    .filter(([, value]) => value !== undefined)
    .map(([key]) => key);
}

/**
 * The status a patch sets, for the audit row: an approve and a revoke (which turn a tenant's traffic on and off)
 * must be told apart, as credential rows already are. Other values stay out (they may be personal data).
 */
export function statusOf(patch: { status?: string }): { status?: string } {
  return patch.status === undefined ? {} : { status: patch.status };
}
