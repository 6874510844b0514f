// /v1/apiproducts: API products in Apigee's ApiProduct shape, with the operation sets that reference each one.
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { invalid, PAGE_QUERY, readBody } from './admin-input.js';
import { productBody, productReplaceBody } from './admin-schemas.js';
import { refuseFileOwned } from './file-ownership.js';
import { deleteDocuments } from './apply-manifests.js';
import { NotFoundError } from '../store/index.js';
import { pageBody, productResource } from './resource-shapes.js';

const KIND = 'APIProduct';

export function registerProductRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  const { db } = deps;

  add('GET', '/v1/apiproducts', async (_req, query) => {
    const page = await db.products.list(query);
    const sets = await db.operationSets.listAll();
    return { body: pageBody(page, (p) => productResource(p, sets)) };
  }, { query: PAGE_QUERY });

  add('POST', '/v1/apiproducts', async (req) => {
    const body = await readBody(req, productBody);
    const store = storeFor(deps, req);
    await refuseFileOwned(store, deps, KIND, body.name);
    const created = await store.products.create(body);
    return { status: 201, body: productResource(created, await db.operationSets.listAll()) };
  });

  add('GET', '/v1/apiproducts/{name}', async (req) => {
    return { body: productResource(await db.products.get(req.params.name), await db.operationSets.listAll()) };
  });

  add('PUT', '/v1/apiproducts/{name}', async (req) => {
    const { name } = req.params;
    const body = await readBody(req, productReplaceBody);
    if (body.name !== undefined && body.name !== name) throw invalid('Products cannot be renamed', [{ path: 'name', message: `must be "${name}", as in the path` }]);
    const store = storeFor(deps, req);
    await refuseFileOwned(store, deps, KIND, name);
    const updated = await store.products.update(name, {
      displayName: body.displayName ?? name,
      description: body.description ?? '',
      approvalType: body.approvalType ?? 'auto',
      attributes: body.attributes ?? [],
    });
    return { body: productResource(updated, await db.operationSets.listAll()) };
  });

  add('DELETE', '/v1/apiproducts/{name}', async (req) => {
    const { name } = req.params;
    const store = storeFor(deps, req);
    await refuseFileOwned(store, deps, KIND, name);
    const product = await db.products.get(name);
    // As a delete of its manifest: refused when the policies would not build without it, or its own templates would
    // then run for every request (template-scope.ts).
    const [result] = await deleteDocuments(store, deps, [{ kind: KIND, name }], { dryRun: false, force: false });
    if (result.outcome === 'not_found') throw new NotFoundError('apiproduct', name);
    return { body: productResource(product, await db.operationSets.listAll()) };
  });
}
