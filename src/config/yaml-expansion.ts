// How large a parsed YAML document becomes once its aliases are expanded, counted on the syntax tree before anything
// is built: what validation walks is the expanded value, so that is what a text's cost has to be bounded by.
import { isAlias, isCollection, isPair, type Document } from 'yaml';

/**
 * How many times the values a document writes its aliases may make it. The yaml library's own limit (maxAliasCount)
 * counts aliases, not what they stand for: 100 products each `attributes: *a`, `a` a list of 10,000 numbers (30 KiB),
 * was a million values to validate, 4 to 88 s on the event loop and GBs of memory. Anchors shared as kubectl users
 * share them (a common spec merged into each model, one endpoint list for several pools) stay far below this.
 */
export const MAX_ALIAS_EXPANSION = 10;

export type Expansion =
  /** Values (scalars, maps, lists; keys too) as written, an alias one; and with every alias replaced by its anchor's. */
  | { written: number; expanded: number }
  /** An alias inside the node it names: the yaml library builds a circular value, which no manifest can be. */
  | { cycle: string };

/**
 * The document's size, written and expanded. An alias names the last anchor of its name before it, as the yaml
 * library resolves it; each anchored node is counted once (a chain of anchors costs its length, not its expansion).
 * @example expansionOf(parseDocument('a: &a [1, 2]\nb: *a')) // { written: 7, expanded: 9 }
 */
export function expansionOf(doc: Document.Parsed): Expansion {
  const anchored = new Map<string, unknown>();
  /** An anchored node's expanded size, set once the node is complete: not yet set, it is an ancestor of the alias. */
  const sizes = new Map<unknown, number>();
  let written = 0;
  let cycle: string | undefined;
  // Depth is bounded: parseYamlStream stops the parser past MAX_JSON_DEPTH levels.
  const size = (node: unknown): number => {
    if (node === null || node === undefined || cycle !== undefined) return 0;
    if (isPair(node)) return size(node.key) + size(node.value);
    written += 1;
    if (isAlias(node)) {
      const target = anchored.get(node.source);
      // An alias to no anchor (yet) is the yaml library's to refuse, as it does when building the value.
      if (target === undefined) return 1;
      const expanded = sizes.get(target);
      if (expanded === undefined) cycle = node.source;
      return expanded ?? 0;
    }
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) anchored.set(anchor, node);
    let total = 1;
    if (isCollection(node)) for (const item of node.items) total += size(item);
    if (anchor) sizes.set(node, total);
    return total;
  };
  const expanded = size(doc.contents);
  return cycle === undefined ? { written, expanded } : { cycle };
}
