// Bringing the API products and operation sets declared in --config files into the store (owner `file`), so apps
// and keys can name them and the admin API refuses to change them, and taking every other object the files declare
// from the admin API. Replicas loading the same files agree: identical content is a no-op, and file-owned rows no
// longer in any file are removed.
import type { ApiProductSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';
import type { JsonObject, StoreView } from '../store/index.js';

/**
 * @returns the objects the admin API had created that a file now declares (`APIProduct/gold`): the file's definition
 * replaces theirs, which the caller should say.
 */
export async function syncFileManifests(store: StoreView, manifests: readonly Manifest[]): Promise<string[]> {
  const products = manifests.filter((m) => m.kind === 'APIProduct');
  const sets = manifests.filter((m) => m.kind === 'APIOperationSet');
  const others = manifests.filter((m) => m.kind !== 'APIProduct' && m.kind !== 'APIOperationSet');
  const takenOver: string[] = [];
  return store.transaction(async (tx) => {
    for (const m of products) {
      const before = await tx.products.find(m.metadata.name);
      if (before && before.owner !== 'file') takenOver.push(`APIProduct/${m.metadata.name}`);
      const s = m.spec as ApiProductSpec;
      await tx.products.apply({
        name: m.metadata.name,
        displayName: s.displayName,
        description: s.description ?? '',
        approvalType: s.approvalType,
        attributes: s.attributes,
        scopes: s.scopes ?? [],
        spec: {
          enforcementRefs: (s.enforcementRefs ?? []) as unknown as JsonObject[],
          ...(s.templateRefs && { templateRefs: s.templateRefs as unknown as JsonObject[] }),
        } as JsonObject,
        owner: 'file',
      });
    }
    for (const m of sets) {
      const before = await tx.operationSets.find(m.metadata.name);
      if (before && before.owner !== 'file') takenOver.push(`APIOperationSet/${m.metadata.name}`);
      await tx.operationSets.apply({ name: m.metadata.name, spec: m.spec as JsonObject, owner: 'file' });
    }
    // The other kinds are read from the files, not stored: the admin API's copy would be enforced in place of the
    // file's, and it could neither change nor delete it (409). A key-value map's entries stay, now the file's map's.
    for (const m of others) {
      const before = await tx.manifests.find(m.kind, m.metadata.name);
      if (!before || before.owner === 'file') continue;
      await tx.manifests.delete(m.kind, m.metadata.name);
      takenOver.push(`${m.kind}/${m.metadata.name}`);
    }
    const productNames = new Set(products.map((m) => m.metadata.name));
    const setNames = new Set(sets.map((m) => m.metadata.name));
    for (const p of await tx.products.listAll()) if (p.owner === 'file' && !productNames.has(p.name)) await tx.products.delete(p.name, { keepGrants: true });
    for (const s of await tx.operationSets.listAll()) if (s.owner === 'file' && !setNames.has(s.name)) await tx.operationSets.delete(s.name);
    return takenOver;
  });
}
