// Where a template runs follows from the products: one an APIProduct names in `templateRefs` runs only for requests
// entitled through that product, one no product names runs for every request. A change that takes a template's last
// naming product away (the product deleted, or its templateRefs edited) would therefore turn that product's own
// policies (a trial's one-request quota, say) onto every tenant without a word: such a change is refused instead.
// So is the mirror image, a change that takes a template away from a product still naming it: a template applied
// later under that name, meant for every request, would then run only for that product's. And through the admin API,
// a product newly naming a template that runs for every request (the gateway's own throttle, one the --config files
// declare too) would take it off every other request without a word: refused as well (narrowedTemplates).
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

/** A product's `templateRefs[ref]` that would take a gateway-wide template off every other request. */
export interface NarrowedTemplate {
  product: string;
  ref: number;
  message: string;
}

/**
 * The references of the products `changed` (an admin-API apply) to templates that existed in `before` with no product
 * naming them: each would make its template run only for that product's requests instead of for every request. A
 * template created in the same change as the product naming it was never gateway-wide, so it is not one of them.
 * Templates `fileOwned` are scoped by the --config files alone, as the admin API cannot change file objects.
 */
export function narrowedTemplates(before: readonly Manifest[], changed: readonly Manifest[], fileOwned: (template: string) => boolean): NarrowedTemplate[] {
  const namedBefore = namingProducts(before);
  const existedBefore = templateNames(before);
  const out: NarrowedTemplate[] = [];
  for (const m of changed) {
    if (m.kind !== 'APIProduct') continue;
    const product = m.metadata.name;
    (m.spec as ApiProductSpec).templateRefs?.forEach(({ name }, ref) => {
      if (!existedBefore.has(name) || namedBefore.has(name)) return;
      const instead = fileOwned(name)
        ? `the --config files declare it, so only they can make it a product's: name it from a product in the files, or give APIProduct/${product} a template of its own`
        : `give APIProduct/${product} a template of its own, or delete the template and apply it again in the same apply as the product`;
      out.push({
        product,
        ref,
        message: `ApimTemplate/${name}: no product names it, so it runs for every request; APIProduct/${product} naming it would make it run only for the requests entitled through that product; ${instead}`,
      });
    });
  }
  return out;
}
