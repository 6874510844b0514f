// Where a template runs follows from the products: one an APIProduct names in `templateRefs` runs only for requests
// entitled through that product, one no product names runs for every request. A change that takes a template's last
// naming product away (the product deleted, or its templateRefs edited) would therefore turn that product's own
// policies (a trial's one-request quota, say) onto every tenant without a word: such a change is refused instead.
// So is the mirror image, a change that takes a template away from a product still naming it: a template applied
// later under that name, meant for every request, would then run only for that product's.
import type { ApiProductSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';

/** Each template name → the products that name it in templateRefs. */
function namingProducts(manifests: readonly Manifest[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of manifests) {
    if (m.kind !== 'APIProduct') continue;
    for (const ref of (m.spec as ApiProductSpec).templateRefs ?? []) {
      const products = out.get(ref.name);
      if (products) products.push(m.metadata.name);
      else out.set(ref.name, [m.metadata.name]);
    }
  }
  return out;
}

const templateNames = (manifests: readonly Manifest[]) => new Set(manifests.filter((m) => m.kind === 'ApimTemplate').map((m) => m.metadata.name));
const productList = (names: readonly string[]) => names.map((p) => `APIProduct/${p}`).join(', ');

/**
 * The problems of a change from `before` to `after` that moves a template between a product and every request: one
 * of a product's templates that no product would name any more, and a deleted template a product would still name.
 */
export function widenedTemplates(before: readonly Manifest[], after: readonly Manifest[]): string[] {
  const namedBefore = namingProducts(before);
  const namedAfter = namingProducts(after);
  const existedBefore = templateNames(before);
  const existAfter = templateNames(after);
  const problems: string[] = [];
  for (const name of existAfter) {
    const owners = namedBefore.get(name);
    if (!owners || !existedBefore.has(name) || namedAfter.has(name)) continue;
    problems.push(
      `ApimTemplate/${name}: runs only for the requests of ${productList(owners)}, which would no longer name it; a template no product names runs for every request, so delete the template in the same change (tollgate delete -f with both) or name it from another product`,
    );
  }
  for (const name of existedBefore) {
    const owners = namedAfter.get(name);
    if (existAfter.has(name) || !owners) continue;
    problems.push(
      `ApimTemplate/${name}: ${productList(owners)} would still name it in templateRefs, so a template applied later under this name would run only for requests entitled through them, not for every request; delete the template in the same change as them (tollgate delete -f with both)`,
    );
  }
  return problems;
}
