// POST /v1/apply: multi-document YAML (or a JSON array) of apim.googleapis.com/v1 manifests, applied all or none.
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { flagsQuery, invalid } from './admin-input.js';
import { applyDocuments } from './apply-manifests.js';
import type { KvmCipher } from './kvm-cipher.js';
import { ADMIN_DOCUMENT_LIMITS, readApimDocuments } from './manifest-documents.js';

/** Problems in the answer point into the body's list of documents: `[2].spec.displayName`. */
export function detailPath(document: number | undefined, path: string): string {
  if (document === undefined) return '(body)';
  return path ? `[${document}].${path}` : `[${document}]`;
}

/** `kvmCipher`: TOLLGATE_KVM_KEY's (null: unset), as read when the admin API was set up. */
export function registerApplyRoute(add: AddRoute, deps: ApimAdminDeps, kvmCipher: KvmCipher | null): void {
  add('POST', '/v1/apply', async (req, { dryRun }) => {
    const store = storeFor(deps, req);
    const { documents, problems } = readApimDocuments(await req.text(), 'admin-api', ADMIN_DOCUMENT_LIMITS);
    if (problems.length > 0) {
      const details = problems.map((p) => ({ path: detailPath(p.document, p.path), message: p.message }));
      throw invalid(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifests; nothing was applied`, details);
    }
    if (documents.length === 0) throw invalid('No manifests to apply', [{ path: '(body)', message: 'holds no documents' }]);
    const { results, violations } = await applyDocuments(store, deps, documents, { dryRun, kvmCipher });
    // Violations are listed only when there are some, so answers without rules keep their shape.
    const reported = violations.length > 0 ? { violations } : {};
    return { body: dryRun ? { dryRun: true, results, ...reported } : { results, ...reported } };
  }, { yaml: true, query: flagsQuery(['dryRun']) });
}
