// OpenAPI path templates (`/files/{name}.{ext}`) matched against request paths: a `{parameter}` stands for one or
// more characters other than `/`, everything else for itself.
import { compileWildcardPattern, SEGMENT, WILD } from '../../../lib/wildcard-pattern.js';

/** A compiled template; `test` has the shape of RegExp#test, which it replaces. */
export interface PathTemplate {
  test(path: string): boolean;
}

/** compilePathTemplate('/files/{name}.{ext}').test('/files/a.txt') → true; without backtracking (wildcard-pattern.ts). */
export function compilePathTemplate(template: string): PathTemplate {
  const pieces: number[] = [];
  for (const part of template.split(/(\{[^}]+\})/)) {
    if (part.startsWith('{')) pieces.push(WILD);
    else for (let i = 0; i < part.length; i++) pieces.push(part.charCodeAt(i));
  }
  return { test: compileWildcardPattern(pieces, SEGMENT) };
}
