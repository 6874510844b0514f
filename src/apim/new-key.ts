// What a new or re-granted key gets: its product grants (each product must exist) and its expiry.
import type { ApiProductGrant, StoreView } from '../store/index.js';
import { invalid, type FieldProblem } from './admin-input.js';

/**
 * Grants for `products` in the given order: a product with approvalType manual starts `pending` until approved on
 * the key, an auto one `approved`. `field` names the list in errors, which name every unknown and repeated product.
 */
export async function grantsFor(store: StoreView, products: readonly string[], field: string): Promise<ApiProductGrant[]> {
  const grants: ApiProductGrant[] = [];
  const problems: FieldProblem[] = [];
  // A Set: indexOf per name was quadratic, and a 2 MB list held the event loop for seconds.
  const seen = new Set<string>();
  for (const [i, name] of products.entries()) {
    if (seen.has(name)) {
      problems.push({ path: `${field}[${i}]`, message: `"${name}" is listed twice` });
      continue;
    }
    seen.add(name);
    const product = await store.products.findToGrant(name);
    if (!product) {
      problems.push({ path: `${field}[${i}]`, message: `API product "${name}" does not exist` });
      continue;
    }
    grants.push({ apiproduct: name, status: product.approvalType === 'manual' ? 'pending' : 'approved' });
  }
  if (problems.length > 0) throw invalid('Unknown or repeated API products', problems);
  return grants;
}

/** ISO expiry `ms` from now; undefined or negative (Apigee's -1) never expires. */
export function expiresAfter(ms: number | undefined): string | null {
  return ms === undefined || ms < 0 ? null : new Date(Date.now() + ms).toISOString();
}
