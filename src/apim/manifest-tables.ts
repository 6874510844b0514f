// Where each apim.googleapis.com/v1 kind is stored: APIProduct and APIOperationSet in their own tables (what the
// hot path reads), every other kind in the generic manifests table.
import type { ApiProductSpec } from '../config/apim-kinds.js';
import type { ApplyOutcome, Owner, StoreView } from '../store/index.js';
import type { ApimDocument } from './manifest-documents.js';

/** APIProduct spec fields that have columns of their own; the rest (enforcementRefs, analytics, ...) stays in `spec`. */
const PRODUCT_COLUMNS = new Set(['displayName', 'description', 'approvalType', 'attributes', 'scopes']);

export async function storedOwner(store: StoreView, kind: string, name: string): Promise<Owner | undefined> {
  switch (kind) {
    case 'APIProduct':
      return (await store.products.find(name))?.owner;
    case 'APIOperationSet':
      return (await store.operationSets.find(name))?.owner;
    default:
      return (await store.manifests.find(kind, name))?.owner;
  }
}

/** Creates or replaces the object; identical content is `unchanged` and writes nothing. */
export async function storeDocument(store: StoreView, doc: ApimDocument): Promise<ApplyOutcome> {
  const { kind, apiVersion, metadata } = doc.manifest;
  switch (kind) {
    case 'APIProduct': {
      const s = doc.manifest.spec as ApiProductSpec;
      const rest = Object.fromEntries(Object.entries(doc.spec).filter(([field]) => !PRODUCT_COLUMNS.has(field)));
      const input = {
        name: metadata.name,
        displayName: s.displayName,
        description: s.description ?? '',
        approvalType: s.approvalType,
        attributes: s.attributes,
        scopes: s.scopes ?? [],
        spec: rest,
      };
      return (await store.products.apply(input)).outcome;
    }
    case 'APIOperationSet':
      return (await store.operationSets.apply({ name: metadata.name, spec: doc.spec })).outcome;
    default:
      return (await store.manifests.apply({ kind, name: metadata.name, apiVersion, spec: doc.spec })).outcome;
  }
}

/**
 * Deletes the object from the table its kind lives in; a KeyValueMap takes its entries (every scope) with it, so a
 * map made again under the same name starts empty. Run it in a transaction. @throws NotFoundError.
 */
export async function deleteDocument(store: StoreView, kind: string, name: string): Promise<void> {
  switch (kind) {
    case 'APIProduct':
      await store.products.delete(name);
      return;
    case 'APIOperationSet':
      await store.operationSets.delete(name);
      return;
    case 'KeyValueMap': {
      const scopes = new Set((await store.kvm.listAll()).filter((e) => e.mapName === name).map((e) => e.scope));
      for (const scope of scopes) await store.kvm.deleteMap(scope, name);
      await store.manifests.delete(kind, name);
      return;
    }
    default:
      await store.manifests.delete(kind, name);
  }
}
