// What apply stored, by kind: GET /v1/manifests/{kind}[/{name}] shows it as manifests; POST /v1/delete takes the same
// documents as POST /v1/apply (`tollgate delete -f`, as kubectl delete -f) and DELETE /v1/manifests/{kind}/{name} one
// object, both all or none, with dry runs.
import { NotFoundError } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { flagsQuery, invalid, PAGE_QUERY } from './admin-input.js';
import { deleteDocuments } from './apply-manifests.js';
import { detailPath } from './apply-route.js';
import { ADMIN_DOCUMENT_LIMITS, kindProblem, readApimTargets } from './manifest-documents.js';
import { getDocument, listDocuments } from './manifest-tables.js';

/** The `{kind}` of a /v1/manifests path, refused (400) unless the admin API stores that kind. */
function apimKind(kind: string): string {
  const wrongKind = kindProblem(kind);
  if (wrongKind) throw invalid('This kind is not stored by the admin API', [{ path: 'kind', message: wrongKind }]);
  return kind;
}

export function registerManifestRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  add('GET', '/v1/manifests/{kind}', async (req, page) => ({ body: await listDocuments(deps.db, apimKind(req.params.kind), page) }), { query: PAGE_QUERY });

  add('GET', '/v1/manifests/{kind}/{name}', async (req) => ({ body: await getDocument(deps.db, apimKind(req.params.kind), req.params.name) }));

  add('POST', '/v1/delete', async (req, { dryRun, force }) => {
    const { targets, problems } = readApimTargets(await req.text(), 'admin-api', ADMIN_DOCUMENT_LIMITS);
    if (problems.length > 0) {
      const details = problems.map((p) => ({ path: detailPath(p.document, p.path), message: p.message }));
      throw invalid(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifests; nothing was deleted`, details);
    }
    if (targets.length === 0) throw invalid('No manifests to delete', [{ path: '(body)', message: 'holds no documents' }]);
    const results = await deleteDocuments(storeFor(deps, req), deps, targets, { dryRun, force });
    return { body: dryRun ? { dryRun: true, results } : { results } };
  }, { yaml: true, query: flagsQuery(['dryRun', 'force']) });

  add('DELETE', '/v1/manifests/{kind}/{name}', async (req, { dryRun, force }) => {
    const kind = apimKind(req.params.kind);
    const name = req.params.name;
    const [result] = await deleteDocuments(storeFor(deps, req), deps, [{ kind, name }], { dryRun, force });
    if (result.outcome === 'not_found') throw new NotFoundError(kind, name);
    return { body: dryRun ? { dryRun: true, ...result } : result };
  }, { query: flagsQuery(['dryRun', 'force']) });
}
