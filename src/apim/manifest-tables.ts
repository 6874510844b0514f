// Where each apim.googleapis.com/v1 kind is stored: APIProduct and APIOperationSet in their own tables (what the
// hot path reads), every other kind in the generic manifests table.
import { APIM_API_VERSION, type ApiProductSpec } from '../config/apim-kinds.js';
import type { ApiProduct, ApplyOutcome, JsonObject, Manifest, OperationSet, Owner, PageRequest, StoreView } from '../store/index.js';
import { redactInlineSecrets } from './inline-secrets.js';
import { epochMs, pageBody } from './resource-shapes.js';
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
 * map made again under the same name starts empty, and an APIProduct its product-scoped entries (often its
 * credentials), so a product made again under its name does not read them. Run it in a transaction.
 * @throws NotFoundError.
 */
export async function deleteDocument(store: StoreView, kind: string, name: string): Promise<void> {
  switch (kind) {
    case 'APIProduct': {
      await store.products.delete(name);
      const scope = `apiproduct:${name}` as const;
      for (const map of await store.kvm.mapNames(scope)) await store.kvm.deleteMap(scope, map);
      return;
    }
    case 'APIOperationSet':
      await store.operationSets.delete(name);
      return;
    case 'KeyValueMap': {
      // The map first: entries without one (a map since removed from --config) are not this delete's to take.
      await store.manifests.delete(kind, name);
      const scopes = new Set((await store.kvm.listAll()).filter((e) => e.mapName === name).map((e) => e.scope));
      for (const scope of scopes) await store.kvm.deleteMap(scope, name);
      return;
    }
    default:
      await store.manifests.delete(kind, name);
  }
}

/**
 * A stored object as a manifest: apply takes it back unchanged (the envelope accepts and ignores `status`, where who
 * owns it and when it changed are told, as Kubernetes reports server-side state), except inline key material, which
 * is shown redacted (inline-secrets.ts).
 */
export interface StoredDocument {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: JsonObject;
  status: { owner: Owner; createdAt: number; lastModifiedAt: number };
}

function productDocument(p: ApiProduct): StoredDocument {
  const spec: JsonObject = { displayName: p.displayName, approvalType: p.approvalType };
  if (p.description) spec.description = p.description;
  if (p.attributes.length > 0) spec.attributes = p.attributes as unknown as JsonObject[];
  if (p.scopes.length > 0) spec.scopes = p.scopes;
  return stored('APIProduct', p.name, APIM_API_VERSION, { ...spec, ...p.spec }, p);
}

function operationSetDocument(s: OperationSet): StoredDocument {
  return stored('APIOperationSet', s.name, APIM_API_VERSION, s.spec, s);
}

function manifestDocument(m: Manifest): StoredDocument {
  return stored(m.kind, m.name, m.apiVersion, redactInlineSecrets(m.kind, m.spec), m);
}

function stored(kind: string, name: string, apiVersion: string, spec: JsonObject, row: { owner: Owner; createdAt: string; updatedAt: string }): StoredDocument {
  return { apiVersion, kind, metadata: { name }, spec, status: { owner: row.owner, createdAt: epochMs(row.createdAt), lastModifiedAt: epochMs(row.updatedAt) } };
}

/** The object of this kind and name as a manifest. @throws NotFoundError. */
export async function getDocument(store: StoreView, kind: string, name: string): Promise<StoredDocument> {
  switch (kind) {
    case 'APIProduct':
      return productDocument(await store.products.get(name));
    case 'APIOperationSet':
      return operationSetDocument(await store.operationSets.get(name));
    default:
      return manifestDocument(await store.manifests.get(kind, name));
  }
}

/** One page of the objects of this kind, by name. */
export async function listDocuments(store: StoreView, kind: string, page: PageRequest): Promise<{ items: StoredDocument[]; nextPageToken?: string }> {
  switch (kind) {
    case 'APIProduct':
      return pageBody(await store.products.list(page), productDocument);
    case 'APIOperationSet':
      return pageBody(await store.operationSets.list(page), operationSetDocument);
    default:
      return pageBody(await store.manifests.list({ kind }, page), manifestDocument);
  }
}
