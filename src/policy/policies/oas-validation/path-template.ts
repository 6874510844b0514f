// OpenAPI path templates (`/files/{name}.{ext}`) matched against request paths: a `{parameter}` stands for one or
// more characters other than `/`, everything else for itself.
import { compileWildcardPattern, SEGMENT, WILD } from '../../../lib/wildcard-pattern.js';

/** A compiled template; `test` has the shape of RegExp#test, which it replaces. */
export interface PathTemplate {
  test(path: string): boolean;
  /** The parameters' names, in the order `values` gives them. */
  readonly names: readonly string[];
  /** The parameters' text (still percent-encoded) in a path `test` accepted. */
  values(path: string): string[];
}

/** One segment of the template: literal text and parameters, alternating, starting and ending with literal text. */
type SegmentParts = { literals: string[]; params: number };

/**
 * compilePathTemplate('/files/{name}.{ext}').test('/files/a.txt') → true, values('/files/a.txt') → ['a', 'txt']; without
 * backtracking (wildcard-pattern.ts).
 */
export function compilePathTemplate(template: string): PathTemplate {
  const pieces: number[] = [];
  const names: string[] = [];
  for (const part of template.split(/(\{[^}]+\})/)) {
    if (part.startsWith('{')) {
      pieces.push(WILD);
      names.push(part.slice(1, -1));
    } else for (let i = 0; i < part.length; i++) pieces.push(part.charCodeAt(i));
  }
  // A parameter holds no `/`, so a matching path has the template's segments, each read on its own.
  const segments: (SegmentParts | null)[] = template
    .replace(/\{[^}]+\}/g, '\0')
    .split('/')
    .map((segment) => {
      const literals = segment.split('\0');
      return literals.length === 1 ? null : { literals, params: literals.length - 1 };
    });
  return {
    test: compileWildcardPattern(pieces, SEGMENT),
    names,
    values(path) {
      const out: string[] = [];
      const texts = path.split('/');
      segments.forEach((parts, i) => parts && out.push(...segmentValues(parts, texts[i])));
      return out;
    },
  };
}

/**
 * A segment's parameters, as the regular expression `[^/]+` per parameter would capture them: each but the last as
 * long as it can be (`{name}.{ext}` reads `a.b.md` as `a.b` and `md`). Read from the right, each literal text at the
 * last place it fits: as every parameter takes any characters, that never rules a match out, and each is one search.
 */
function segmentValues({ literals, params }: SegmentParts, text: string): string[] {
  const out: string[] = new Array<string>(params);
  let end = text.length - literals[params].length;
  for (let p = params - 1; p > 0; p--) {
    const before = literals[p];
    // The parameter takes at least one character: `before` ends by end - 1.
    const at = before === '' ? end - 1 : text.lastIndexOf(before, end - 1 - before.length);
    out[p] = text.slice(at + before.length, end);
    end = at;
  }
  out[0] = text.slice(literals[0].length, end);
  return out;
}
