// Which origins a CORS policy allows: exact origins, `*`, or patterns where `*` stands for one or more DNS labels.

/** origin → whether it is allowed; compiled once. */
export type OriginMatcher = (origin: string) => boolean;

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** compileOrigins(['https://app.example.com', 'https://*.example.com']) */
export function compileOrigins(allowed: readonly string[]): { matches: OriginMatcher; any: boolean } {
  if (allowed.includes('*')) return { matches: () => true, any: true };
  const exact = new Set(allowed.filter((o) => !o.includes('*')).map((o) => o.toLowerCase()));
  const patterns = allowed
    .filter((o) => o.includes('*'))
    .map((o) => new RegExp(`^${o.toLowerCase().split('*').map(escape).join('[a-z0-9-]+(?:\\.[a-z0-9-]+)*')}$`));
  return { matches: (origin) => exact.has(origin.toLowerCase()) || patterns.some((p) => p.test(origin.toLowerCase())), any: false };
}
