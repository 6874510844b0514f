// Where a template runs follows from the products: one an APIProduct names in `templateRefs` runs only for requests
// entitled through that product, one no product names runs for every request. A change that takes a template's last
// naming product away (the product deleted, or its templateRefs edited) would therefore turn that product's own
// policies (a trial's one-request quota, say) onto every tenant without a word: such a change is refused instead.
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

/** The problems of a change from `before` to `after` that makes a product's template run for every request. */
export function widenedTemplates(before: readonly Manifest[], after: readonly Manifest[]): string[] {
  const namedBefore = namingProducts(before);
  const namedAfter = namingProducts(after);
  const existedBefore = templateNames(before);
  const problems: string[] = [];
  for (const name of templateNames(after)) {
    const owners = namedBefore.get(name);
    if (!owners || !existedBefore.has(name) || namedAfter.has(name)) continue;
    const products = owners.map((p) => `APIProduct/${p}`).join(', ');
    problems.push(
      `ApimTemplate/${name}: runs only for the requests of ${products}, which would no longer name it; a template no product names runs for every request, so delete the template in the same change (tollgate delete -f with both) or name it from another product`,
    );
  }
  return problems;
}
