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
      for (const [k, child] of Object.entries(v)) walk(child, `${name}.${k}`, depth + 1);
      return;
    }
    left--;
    set(name, typeof v === 'string' ? v : JSON.stringify(v));
  };
  walk(value, prefix, 0);
}
