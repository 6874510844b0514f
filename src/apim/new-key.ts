// What a new or re-granted key gets: its product grants (each product must exist) and its expiry.
import type { ApiProductGrant, StoreView } from '../store/index.js';
import { invalid, type FieldProblem } from './admin-input.js';

/**
 * Grants for `products` in the given order: a product with approvalType manual starts `pending` until approved on
 * the key, an auto one `approved`. `field` names the list in errors.
 */
export async function grantsFor(store: StoreView, products: readonly string[], field: string): Promise<ApiProductGrant[]> {
  const grants: ApiProductGrant[] = [];
  const problems: FieldProblem[] = [];
  for (const [i, name] of products.entries()) {
    const product = await store.products.findToGrant(name);
    if (!product) {
      problems.push({ path: `${field}[${i}]`, message: `API product "${name}" does not exist` });
      continue;
    }
    grants.push({ apiproduct: name, status: product.approvalType === 'manual' ? 'pending' : 'approved' });
  }
  if (problems.length > 0) throw invalid('Unknown API products', problems);
  return grants;
}

/** ISO expiry `ms` from now; undefined or negative (Apigee's -1) never expires. */
export function expiresAfter(ms: number | undefined): string | null {
  return ms === undefined || ms < 0 ? null : new Date(Date.now() + ms).toISOString();
}
