// Everything the request hot path needs, read in one consistent transaction: one query per small table, the tables
// that grow with use (keys, apps, developers, key-value entries) in pages of rows.
import { ApiProducts, type ApiProduct } from './api-products.js';
import { Apps, type App } from './apps.js';
import { Credentials, type Credential } from './credentials.js';
import { Developers, type Developer } from './developers.js';
import { Kvm, type KvmEntry } from './kvm.js';
import { Manifests, type Manifest } from './manifests.js';
import { OperationSets, type OperationSet } from './operation-sets.js';
import type { IdentityRefs } from './change-feed.js';
import type { Session } from './session.js';

export interface Snapshot {
  products: ApiProduct[];
  operationSets: OperationSet[];
  manifests: Manifest[];
  developers: Developer[];
  apps: App[];
  /** With key hashes, so keys can be verified in memory. */
  credentials: Credential[];
  kvmEntries: KvmEntry[];
  /** When the read began; a change event after it means the snapshot may be stale. */
  loadedAt: string;
}

/**
 * What the policies are built from, and what product grants resolve against: the small tables a policy change writes.
 * Checking or following such a change reads these alone, not the keys, apps, developers and entries of a big store.
 */
export type PolicyRows = Pick<Snapshot, 'products' | 'operationSets' | 'manifests'>;

export function loadPolicyRows(session: Session): Promise<PolicyRows> {
  return session.snapshot(readPolicyRows);
}

async function readPolicyRows(s: Session): Promise<PolicyRows> {
  return {
    products: await new ApiProducts(s).listAll(),
    operationSets: await new OperationSets(s).listAll(),
    manifests: await new Manifests(s).listAll(),
  };
}

/** `progress` is called after each page of rows, so a caller can tell a big store's long load from a stalled one. */
export function loadSnapshot(session: Session, progress?: () => void): Promise<Snapshot> {
  const loadedAt = new Date().toISOString();
  return session.snapshot(async (s) => ({
    ...(await readPolicyRows(s)),
    developers: await new Developers(s).listAll(progress),
    apps: await new Apps(s).listAll(progress),
    credentials: await new Credentials(s).listAll(progress),
    kvmEntries: await new Kvm(s).listAll(progress),
    loadedAt,
  }));
}

/** The rows a change of `refs`'s keys is read from: the apps it names, the developers' apps, the keys it names. */
export interface IdentityRows {
  /** performance.now() as the read began: what was served after it may be newer than these rows. */
  readStartedAt: number;
  apps: App[];
  /** The apps' developers and the developers named. */
  developers: Developer[];
  /** Every key of the apps named and of the developers' apps, and the keys named that still exist. */
  credentials: Credential[];
}

export function loadIdentityRows(session: Session, refs: IdentityRefs): Promise<IdentityRows> {
  const readStartedAt = performance.now();
  return session.snapshot(async (s) => {
    const credentials = await new Credentials(s).listOwned(refs);
    const apps = new Apps(s);
    const owned = refs.appIds.length + refs.developerIds.length > 0 ? await apps.listOwned(refs) : [];
    // The apps of the keys named are read by id: those of the apps named are in `owned` already.
    const known = new Set(owned.map((a) => a.id));
    const keyApps = [...new Set(credentials.map((c) => c.appId).filter((id) => !known.has(id)))];
    const ofKeys = keyApps.length > 0 ? await apps.listOwned({ appIds: keyApps, developerIds: [] }) : [];
    const developerIds = new Set([...refs.developerIds, ...owned.map((a) => a.developerId), ...ofKeys.map((a) => a.developerId)]);
    return {
      readStartedAt,
      apps: [...owned, ...ofKeys],
      developers: await new Developers(s).listByIds([...developerIds]),
      credentials,
    };
  });
}
