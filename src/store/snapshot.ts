// Everything the request hot path needs, read in one consistent transaction with one query per table.
import { ApiProducts, type ApiProduct } from './api-products.js';
import { Apps, type App } from './apps.js';
import { Credentials, type Credential } from './credentials.js';
import { Developers, type Developer } from './developers.js';
import { Kvm, type KvmEntry } from './kvm.js';
import { Manifests, type Manifest } from './manifests.js';
import { OperationSets, type OperationSet } from './operation-sets.js';
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

export function loadSnapshot(session: Session): Promise<Snapshot> {
  const loadedAt = new Date().toISOString();
  return session.snapshot(async (s) => ({
    products: await new ApiProducts(s).listAll(),
    operationSets: await new OperationSets(s).listAll(),
    manifests: await new Manifests(s).listAll(),
    developers: await new Developers(s).listAll(),
    apps: await new Apps(s).listAll(),
    credentials: await new Credentials(s).listAll(),
    kvmEntries: await new Kvm(s).listAll(),
    loadedAt,
  }));
}
