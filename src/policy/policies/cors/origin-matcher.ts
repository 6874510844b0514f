// Which origins a CORS policy allows: exact origins, `*`, or patterns where `*` stands for one or more DNS labels.
import { compileWildcardPattern, piecesOf, type Wildcard } from '../../../lib/wildcard-pattern.js';

/** origin → whether it is allowed; compiled once. */
export type OriginMatcher = (origin: string) => boolean;

/** `*` is one or more DNS labels: `[a-z0-9-]+(?:\.[a-z0-9-]+)*`, matched without backtracking (wildcard-pattern.ts). */
const LABELS: Wildcard = { inside: (c) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45, separator: 46 };

/** compileOrigins(['https://app.example.com', 'https://*.example.com']) */
export function compileOrigins(allowed: readonly string[]): { matches: OriginMatcher; any: boolean } {
  if (allowed.includes('*')) return { matches: () => true, any: true };
  const exact = new Set(allowed.filter((o) => !o.includes('*')).map((o) => o.toLowerCase()));
  const patterns = allowed.filter((o) => o.includes('*')).map((o) => compileWildcardPattern(piecesOf(o.toLowerCase(), '*'), LABELS));
  return {
    matches: (origin) => {
      const lower = origin.toLowerCase();
      return exact.has(lower) || patterns.some((matches) => matches(lower));
    },
    any: false,
  };
}
