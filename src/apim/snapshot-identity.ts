// The hot path's view of API management: the store's snapshot compiled into credentials by key hash, each with
// its app, developer and product grants resolved, so verifying a key is one map lookup.
import { operationSetsByProduct, type IdentitySource, type KeyRecord } from '../policy/index.js';
import type { Snapshot } from '../store/index.js';

export class SnapshotIdentity implements IdentitySource {
  readonly #byHash: Map<string, KeyRecord>;

  constructor(snapshot: Snapshot) {
    const setsByProduct = operationSetsByProduct(snapshot.operationSets);
    const products = new Map(snapshot.products.map((p) => [p.name, p]));
    const developers = new Map(snapshot.developers.map((d) => [d.id, d]));
    const apps = new Map(snapshot.apps.map((a) => [a.id, a]));
    this.#byHash = new Map();
    for (const c of snapshot.credentials) {
      const app = apps.get(c.appId);
      const dev = app && developers.get(app.developerId);
      if (!app || !dev) continue;
      this.#byHash.set(c.keyHash, {
        keyId: c.keyId,
        ...(c.secretHash !== null && { secretHash: c.secretHash }),
        status: c.status,
        expiresAt: c.expiresAt === null ? null : Date.parse(c.expiresAt),
        appId: app.id,
        appName: app.name,
        appStatus: app.status,
        developerId: dev.id,
        developerEmail: dev.email,
        developerStatus: dev.status,
        // A grant for a product that no longer exists grants nothing.
        products: c.apiProducts.map((g) => ({
          name: g.apiproduct,
          status: g.status,
          operationSets: products.has(g.apiproduct) ? (setsByProduct.get(g.apiproduct) ?? []) : [],
          scopes: products.get(g.apiproduct)?.scopes ?? [],
        })),
      });
    }
  }

  findKeyByHash(hash: string): KeyRecord | undefined {
    return this.#byHash.get(hash);
  }

  get size(): number {
    return this.#byHash.size;
  }
}
