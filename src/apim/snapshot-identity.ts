// The hot path's view of API management: the store's snapshot compiled into credentials by key hash, each with
// its app, developer and product grants resolved, so verifying a key is one map lookup.
import { operationSetsByProduct, type IdentitySource, type KeyRecord, type OperationSetGrant } from '../policy/index.js';
import type { ApiProduct, App, Credential, Developer, IdentityRefs, IdentityRows, Snapshot } from '../store/index.js';

export class SnapshotIdentity implements IdentitySource {
  readonly #byHash = new Map<string, KeyRecord>();
  /** The hashes of each app's keys, and the apps of each developer: what a change of some apps' keys replaces. */
  readonly #hashesByApp = new Map<string, Set<string>>();
  readonly #appsByDeveloper = new Map<string, Set<string>>();
  readonly #setsByProduct: Map<string, OperationSetGrant[]>;
  readonly #products: Map<string, ApiProduct>;

  constructor(snapshot: Snapshot) {
    this.#setsByProduct = operationSetsByProduct(snapshot.operationSets);
    this.#products = new Map(snapshot.products.map((p) => [p.name, p]));
    this.#add(snapshot);
  }

  /**
   * Replaces the keys of the apps `refs` names and of every app of the developers it names (as this view held them
   * and as the store holds them now) with `rows`, read after the change: a key, app or developer change costs a read
   * of the apps it touched, not of every key. Products and operation sets are unchanged (a change of those reloads).
   */
  replace(refs: IdentityRefs, rows: IdentityRows): void {
    const apps = new Set([...refs.appIds, ...rows.apps.map((a) => a.id)]);
    for (const developerId of refs.developerIds) for (const appId of this.#appsByDeveloper.get(developerId) ?? []) apps.add(appId);
    for (const appId of apps) {
      for (const hash of this.#hashesByApp.get(appId) ?? []) {
        const record = this.#byHash.get(hash);
        // A key imported into another app since (its move read before the delete that freed it) is that app's now.
        if (record?.appId !== appId) continue;
        this.#byHash.delete(hash);
        const owned = this.#appsByDeveloper.get(record.developerId);
        if (owned?.delete(appId) && owned.size === 0) this.#appsByDeveloper.delete(record.developerId);
      }
      this.#hashesByApp.delete(appId);
    }
    this.#add(rows);
  }

  #add(rows: { developers: Developer[]; apps: App[]; credentials: Credential[] }): void {
    const developers = new Map(rows.developers.map((d) => [d.id, d]));
    const apps = new Map(rows.apps.map((a) => [a.id, a]));
    for (const c of rows.credentials) {
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
          operationSets: this.#products.has(g.apiproduct) ? (this.#setsByProduct.get(g.apiproduct) ?? []) : [],
          scopes: this.#products.get(g.apiproduct)?.scopes ?? [],
        })),
      });
      let hashes = this.#hashesByApp.get(app.id);
      if (!hashes) this.#hashesByApp.set(app.id, (hashes = new Set()));
      hashes.add(c.keyHash);
      let owned = this.#appsByDeveloper.get(dev.id);
      if (!owned) this.#appsByDeveloper.set(dev.id, (owned = new Set()));
      owned.add(app.id);
    }
  }

  findKeyByHash(hash: string): KeyRecord | undefined {
    return this.#byHash.get(hash);
  }

  get size(): number {
    return this.#byHash.size;
  }
}
