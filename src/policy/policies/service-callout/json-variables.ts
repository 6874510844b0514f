// A JSON answer as flow variables: every leaf under `<prefix>.<field>.<field>` (array items by index), bounded so a
// large answer cannot flood the request's variables.
const MAX_LEAVES = 256;
const MAX_DEPTH = 8;

/** flattenJson({ user: { tier: 'gold' } }, 'callout.body', set) sets `callout.body.user.tier` = 'gold'. */
export function flattenJson(value: unknown, prefix: string, set: (name: string, value: string) => void): void {
  let left = MAX_LEAVES;
  const walk = (v: unknown, name: string, depth: number): void => {
    if (left <= 0) return;
    if (v !== null && typeof v === 'object' && depth < MAX_DEPTH) {
      // Stops with the budget: walking on through a 500,000-item array held the event loop for ~0.4 s to set nothing.
      if (Array.isArray(v)) for (let i = 0; i < v.length && left > 0; i++) walk(v[i], `${name}.${i}`, depth + 1);
      else for (const k in v) {
        if (left <= 0) break;
        if (Object.hasOwn(v, k)) walk((v as Record<string, unknown>)[k], `${name}.${k}`, depth + 1);
      }
      return;
    }
    left--;
    set(name, typeof v === 'string' ? v : JSON.stringify(v));
  };
  walk(value, prefix, 0);
}
