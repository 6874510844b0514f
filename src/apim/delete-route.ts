// Deleting what apply stored: POST /v1/delete takes the same documents as POST /v1/apply (`tollgate delete -f`, as
// kubectl delete -f), DELETE /v1/manifests/{kind}/{name} one object. Both all or none, with dry runs.
import { NotFoundError } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { invalid, readFlag } from './admin-input.js';
import { deleteDocuments } from './apply-manifests.js';
import { detailPath } from './apply-route.js';
import { kindProblem, readApimTargets } from './manifest-documents.js';

export function registerDeleteRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  add('POST', '/v1/delete', async (req) => {
    const dryRun = readFlag(req, 'dryRun');
    const { targets, problems } = readApimTargets(await req.text(), 'admin-api');
    if (problems.length > 0) {
      const details = problems.map((p) => ({ path: detailPath(p.document, p.path), message: p.message }));
      throw invalid(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifests; nothing was deleted`, details);
    }
    if (targets.length === 0) throw invalid('No manifests to delete', [{ path: '(body)', message: 'holds no documents' }]);
    const results = await deleteDocuments(storeFor(deps, req), deps, targets, { dryRun });
    return { body: dryRun ? { dryRun: true, results } : { results } };
  });

  add('DELETE', '/v1/manifests/{kind}/{name}', async (req) => {
    const dryRun = readFlag(req, 'dryRun');
    const { kind, name } = req.params;
    const wrongKind = kindProblem(kind);
    if (wrongKind) throw invalid('This kind is not stored by the admin API', [{ path: 'kind', message: wrongKind }]);
    const [result] = await deleteDocuments(storeFor(deps, req), deps, [{ kind, name }], { dryRun });
    if (result.outcome === 'not_found') throw new NotFoundError(kind, name);
    return { body: dryRun ? { dryRun: true, ...result } : result };
  });
}
