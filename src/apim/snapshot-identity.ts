// The hot path's view of API management: the store's snapshot compiled into credentials by key hash, each with
// its app, developer and product grants resolved, so verifying a key is one map lookup.
import { setImmediate as loopTurn } from 'node:timers/promises';
import { operationSetsByProduct, type GrantStatus, type IdentitySource, type KeyRecord, type OperationSetGrant, type ProductGrant } from '../policy/index.js';
import type { ApiProduct, App, Credential, Developer, IdentityRefs, IdentityRows, PolicyRows, Snapshot } from '../store/index.js';

/**
 * Keys added between event-loop turns by load(): 200,000 keys built in one go held every request for 1.5–3 s; a slice
 * of this many takes a few milliseconds.
 */
const KEYS_PER_TURN = 5000;

export class SnapshotIdentity implements IdentitySource {
  readonly #byHash = new Map<string, KeyRecord>();
  /** The hashes of each app's keys, and the apps of each developer: what a change of some apps' keys replaces. */
  readonly #hashesByApp = new Map<string, Set<string>>();
  readonly #appsByDeveloper = new Map<string, Set<string>>();
  /** The hash of each key by id: what a change of one key (gone since, perhaps) replaces. */
  readonly #hashByKeyId = new Map<string, string>();
  /**
   * One grant object per product name and status, shared by every key holding it, so a policy change re-resolves these
   * (relink) rather than rebuilding every key's record.
   */
  readonly #grants = new Map<string, ProductGrant>();
  #setsByProduct = new Map<string, OperationSetGrant[]>();
  #products = new Map<string, ApiProduct>();

  private constructor(policies: PolicyRows) {
    this.relink(policies);
  }

  /** The snapshot's keys, added a slice at a time with event-loop turns between, so requests are served meanwhile. */
  static async load(snapshot: Snapshot): Promise<SnapshotIdentity> {
    const identity = new SnapshotIdentity(snapshot);
    const developers = byId(snapshot.developers);
    const apps = byId(snapshot.apps);
    for (let i = 0; i < snapshot.credentials.length; i += KEYS_PER_TURN) {
      if (i > 0) await loopTurn();
      identity.#addKeys(developers, apps, snapshot.credentials.slice(i, i + KEYS_PER_TURN));
    }
    return identity;
  }

  /**
   * Resolves every key's grants against these products and operation sets (a policy change's): the keys, apps and
   * developers did not change, so their records stay as they are. Costs the number of products, not of keys.
   */
  relink(policies: PolicyRows): void {
    this.#setsByProduct = operationSetsByProduct(policies.operationSets);
    this.#products = new Map(policies.products.map((p) => [p.name, p]));
    for (const grant of this.#grants.values()) this.#resolve(grant);
  }

  /**
   * Replaces the keys of the apps `refs` names, of every app of the developers it names (as this view held them and as
   * the store holds them now) and the keys it names with `rows`, read after the change: a key, app or developer change
   * costs a read of the keys or apps it touched, not of every key.
   */
  replace(refs: IdentityRefs, rows: Omit<IdentityRows, 'readStartedAt'>): void {
    const apps = new Set(refs.appIds);
    const developers = new Set(refs.developerIds);
    for (const developerId of developers) for (const appId of this.#appsByDeveloper.get(developerId) ?? []) apps.add(appId);
    // A named developer's app this view holds no key of; the apps of keys named alone keep their other keys.
    for (const app of rows.apps) if (developers.has(app.developerId)) apps.add(app.id);
    for (const appId of apps) {
      for (const hash of this.#hashesByApp.get(appId) ?? []) this.#remove(hash, appId);
      this.#hashesByApp.delete(appId);
    }
    for (const keyId of refs.keyIds ?? []) {
      const hash = this.#hashByKeyId.get(keyId);
      if (hash !== undefined && this.#byHash.get(hash)?.keyId === keyId) this.#remove(hash);
    }
    this.#addKeys(byId(rows.developers), byId(rows.apps), rows.credentials);
  }

  /** Drops the record of `hash`, unless it belongs to another app than `appId`. */
  #remove(hash: string, appId?: string): void {
    const record = this.#byHash.get(hash);
    // A key imported into another app since (its move read before the delete that freed it) is that app's now.
    if (!record || (appId !== undefined && record.appId !== appId)) return;
    this.#byHash.delete(hash);
    if (this.#hashByKeyId.get(record.keyId) === hash) this.#hashByKeyId.delete(record.keyId);
    const hashes = this.#hashesByApp.get(record.appId);
    if (!hashes?.delete(hash) || hashes.size > 0) return;
    this.#hashesByApp.delete(record.appId);
    const owned = this.#appsByDeveloper.get(record.developerId);
    if (owned?.delete(record.appId) && owned.size === 0) this.#appsByDeveloper.delete(record.developerId);
  }

  #addKeys(developers: ReadonlyMap<string, Developer>, apps: ReadonlyMap<string, App>, credentials: readonly Credential[]): void {
    for (const c of credentials) {
      const app = apps.get(c.appId);
      const dev = app && developers.get(app.developerId);
      if (!app || !dev) continue;
      const replaced = this.#byHash.get(c.keyHash);
      if (replaced && replaced.keyId !== c.keyId && this.#hashByKeyId.get(replaced.keyId) === c.keyHash) this.#hashByKeyId.delete(replaced.keyId);
      this.#hashByKeyId.set(c.keyId, c.keyHash);
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
        products: c.apiProducts.map((g) => this.#grant(g.apiproduct, g.status)),
      });
      let hashes = this.#hashesByApp.get(app.id);
      if (!hashes) this.#hashesByApp.set(app.id, (hashes = new Set()));
      hashes.add(c.keyHash);
      let owned = this.#appsByDeveloper.get(dev.id);
      if (!owned) this.#appsByDeveloper.set(dev.id, (owned = new Set()));
      owned.add(app.id);
    }
  }

  #grant(name: string, status: GrantStatus): ProductGrant {
    const id = `${status}/${name}`;
    let grant = this.#grants.get(id);
    if (!grant) this.#grants.set(id, (grant = this.#resolve({ name, status, operationSets: [] })));
    return grant;
  }

  /** A grant for a product that no longer exists grants nothing. */
  #resolve(grant: ProductGrant): ProductGrant {
    const product = this.#products.get(grant.name);
    grant.operationSets = product ? (this.#setsByProduct.get(grant.name) ?? []) : [];
    grant.scopes = product?.scopes ?? [];
    return grant;
  }

  findKeyByHash(hash: string): KeyRecord | undefined {
    return this.#byHash.get(hash);
  }

  get size(): number {
    return this.#byHash.size;
  }
}

function byId<T extends { id: string }>(rows: readonly T[]): Map<string, T> {
  return new Map(rows.map((r) => [r.id, r]));
}
