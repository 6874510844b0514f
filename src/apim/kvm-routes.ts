// /v1/keyvaluemaps: key-value maps (optionally encrypted at rest) and their entries, for KeyValueMapOperations.
// `?apiproduct=NAME` on entry routes selects the product-scoped entries of a map instead of the environment's.
import { z } from 'zod';
import { APIM_API_VERSION } from '../config/apim-kinds.js';
import { resourceName } from '../config/manifest.js';
import { AdminError, type AdminRequest } from '../gateway/admin-router.js';
import { ConflictError, kvmKeyProblem, NotFoundError, storedMapEncrypted, type KvmEntry, type KvmScope, type StoreView } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { invalid, PAGE_QUERY, readBody } from './admin-input.js';
import { refuseFileOwned } from './file-ownership.js';
import { deleteDocument } from './manifest-tables.js';
import { NO_KVM_KEY } from './apply-kvm.js';
import { KVM_KEY_ENV, type KvmCipher } from './kvm-cipher.js';
import { mapKeyProblem } from './kvm-view.js';
import { pageBody } from './resource-shapes.js';

const KIND = 'KeyValueMap';
const mapBody = z.object({ name: resourceName, encrypted: z.boolean().default(false) }).strict();
/** An entry is addressed by its name in the path (kvmKeyProblem). */
const entryName = z.string().superRefine((n, ctx) => {
  const problem = kvmKeyProblem(n);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const entryBody = z.object({ name: entryName, value: z.string() }).strict();
const valueBody = z.object({ name: entryName.optional(), value: z.string() }).strict();
const SCOPE_QUERY = { apiproduct: resourceName.optional() };

const mapExists = (map: string) => new AdminError(409, 'already_exists', `Key-value map "${map}" already exists`, [{ path: 'name', message: 'already exists' }]);
const entryExists = (key: string) => new AdminError(409, 'already_exists', `Entry "${key}" already exists`, [{ path: 'name', message: 'already exists' }]);

/**
 * Values of encrypted maps are write-only through the API, as in Apigee. By how the entry is stored, not the map: a
 * plaintext one is not hidden as if it were encrypted, nor is ciphertext shown as a value.
 */
const entryResource = (e: KvmEntry) => (e.encrypted ? { name: e.key, encrypted: true } : { name: e.key, value: e.value });

interface MapInfo {
  name: string;
  encrypted: boolean;
}

/** Entries a re-encryption writes per transaction. */
const REENCRYPT_CHUNK = 500;

/** `cipher`: TOLLGATE_KVM_KEY's (null: unset). */
export function registerKvmRoutes(add: AddRoute, deps: ApimAdminDeps, cipher: KvmCipher | null): void {
  const { db } = deps;

  const fileMaps = (): MapInfo[] =>
    (deps.fileManifests?.() ?? []).filter((m) => m.kind === KIND).map((m) => ({ name: m.metadata.name, encrypted: (m.spec as { encrypted: boolean }).encrypted }));

  /**
   * The map of the --config files or the admin API. `hold`, in a write transaction: the stored map is held there
   * (Kvm.storedMap), so a delete of it either waits for the write and takes its entry along, or came first and this
   * finds no map; read before the transaction, the map could be deleted in between and the entry outlive it.
   */
  const findMap = async (store: StoreView, map: string, hold = false): Promise<MapInfo> => {
    const fromFile = fileMaps().find((m) => m.name === map);
    if (fromFile) return fromFile;
    const encrypted = hold ? (await store.kvm.storedMap(map))?.encrypted : await store.manifests.find(KIND, map).then((m) => m && storedMapEncrypted(m.spec));
    if (encrypted === undefined) throw new AdminError(404, 'not_found', `No key-value map named "${map}"`);
    return { name: map, encrypted };
  };

  const scopeOf = ({ apiproduct }: { apiproduct?: string }): KvmScope => (apiproduct ? `apiproduct:${apiproduct}` : 'environment');

  /**
   * `create`: refuse an existing entry (409) rather than replace it. A product's entries need the product: written for
   * one that does not exist, a product created later under its name would read them (its delete takes them along).
   */
  const put = async (req: AdminRequest, scope: { apiproduct?: string }, mapName: string, key: string, value: string, opts: { create?: boolean } = {}) => {
    try {
      const entry = await storeFor(deps, req).transaction(async (tx) => {
        const map = await findMap(tx, mapName, true);
        if (map.encrypted && !cipher) throw new AdminError(503, 'kvm_key_missing', `Map "${map.name}" is encrypted and ${KVM_KEY_ENV} is not set`);
        const keyProblem = map.encrypted ? await mapKeyProblem(tx.kvm, cipher!, map.name) : undefined;
        if (keyProblem) throw new AdminError(409, 'kvm_key_mismatch', keyProblem);
        if (scope.apiproduct !== undefined && !(await tx.products.findToGrant(scope.apiproduct))) throw new NotFoundError('apiproduct', scope.apiproduct);
        const input = { scope: scopeOf(scope), mapName: map.name, key, value: map.encrypted ? cipher!.encrypt(value) : value, encrypted: map.encrypted };
        return opts.create ? tx.kvm.create(input) : tx.kvm.put(input);
      });
      return entryResource(entry);
    } catch (err) {
      if (err instanceof ConflictError) throw entryExists(key);
      throw err;
    }
  };

  add('GET', '/v1/keyvaluemaps', async () => {
    const stored = (await db.manifests.listAll()).filter((m) => m.kind === KIND).map((m) => ({ name: m.name, encrypted: storedMapEncrypted(m.spec) }));
    return { body: { keyValueMaps: [...fileMaps(), ...stored] } };
  });

  add('POST', '/v1/keyvaluemaps', async (req) => {
    const body = await readBody(req, mapBody);
    if (body.encrypted && !cipher) throw invalid(`Encrypted maps need ${KVM_KEY_ENV}`, [{ path: 'encrypted', message: NO_KVM_KEY }]);
    const store = storeFor(deps, req);
    await refuseFileOwned(store, deps, KIND, body.name);
    // The insert, not a prior read, decides: of two concurrent creates of one map, one is a 409.
    try {
      await store.manifests.create({ kind: KIND, name: body.name, apiVersion: APIM_API_VERSION, spec: { encrypted: body.encrypted } });
    } catch (err) {
      if (err instanceof ConflictError) throw mapExists(body.name);
      throw err;
    }
    return { status: 201, body };
  });

  // A key change: TOLLGATE_KVM_KEY the new key, the old one in TOLLGATE_KVM_PREVIOUS_KEYS on every replica; then this
  // writes each entry encrypted under an earlier key again under the current one, after which the old key can go.
  add('POST', '/v1/keyvaluemaps:reencrypt', async (req) => {
    if (!cipher) throw new AdminError(503, 'kvm_key_missing', `${KVM_KEY_ENV} is not set`);
    // Each entry opened once: those under an earlier key are rewritten; those under none of the keys (nor rewritable)
    // are named by count, for the operator to find the key or delete them.
    const changes: { entry: KvmEntry; was: string; now: string }[] = [];
    let unreadable = 0;
    for (const entry of await db.kvm.listEncrypted()) {
      const opened = cipher.open(entry.value);
      if (opened === undefined) unreadable++;
      else if (opened.stale) changes.push({ entry, was: entry.value, now: cipher.encrypt(opened.plain) });
    }
    const store = storeFor(deps, req);
    let reencrypted = 0;
    // A few hundred a transaction: a store of many entries is not locked for one long write.
    for (let i = 0; i < changes.length; i += REENCRYPT_CHUNK) reencrypted += await store.kvm.replaceCiphertexts(changes.slice(i, i + REENCRYPT_CHUNK));
    return { body: { reencrypted, unreadable } };
  });

  add('GET', '/v1/keyvaluemaps/{map}', async (req) => ({ body: await findMap(db, req.params.map) }));

  add('DELETE', '/v1/keyvaluemaps/{map}', async (req) => {
    const store = storeFor(deps, req);
    await refuseFileOwned(store, deps, KIND, req.params.map);
    const map = await store.transaction(async (tx) => {
      const found = await findMap(tx, req.params.map);
      await deleteDocument(tx, KIND, found.name);
      return found;
    });
    return { body: map };
  });

  add('GET', '/v1/keyvaluemaps/{map}/entries', async (req, query) => {
    const map = await findMap(db, req.params.map);
    const page = await db.kvm.list(scopeOf(query), map.name, query);
    return { body: pageBody(page, entryResource) };
  }, { query: { ...SCOPE_QUERY, ...PAGE_QUERY } });

  add('POST', '/v1/keyvaluemaps/{map}/entries', async (req, scope) => {
    const body = await readBody(req, entryBody);
    return { status: 201, body: await put(req, scope, req.params.map, body.name, body.value, { create: true }) };
  }, { query: SCOPE_QUERY });

  add('GET', '/v1/keyvaluemaps/{map}/entries/{key}', async (req, scope) => {
    const map = await findMap(db, req.params.map);
    const entry = await db.kvm.get(scopeOf(scope), map.name, req.params.key);
    if (!entry) throw new AdminError(404, 'not_found', `No entry "${req.params.key}" in map "${map.name}"`);
    return { body: entryResource(entry) };
  }, { query: SCOPE_QUERY });

  add('PUT', '/v1/keyvaluemaps/{map}/entries/{key}', async (req, scope) => {
    const body = await readBody(req, valueBody);
    // The name in the path is stored as POST's body name is: the same rules (on PostgreSQL a longer one was a 500).
    const name = entryName.safeParse(req.params.key);
    if (!name.success) throw invalid('Invalid entry name in the path', name.error.issues.map((i) => ({ path: 'key', message: i.message })));
    if (body.name !== undefined && body.name !== req.params.key) throw invalid('Entries cannot be renamed', [{ path: 'name', message: `must be "${req.params.key}", as in the path` }]);
    return { body: await put(req, scope, req.params.map, req.params.key, body.value) };
  }, { query: SCOPE_QUERY });

  // Reads and deletes of a product's entries do not need the product: entries kept while a product is gone from the
  // --config files (for when it comes back) can still be seen and removed.
  add('DELETE', '/v1/keyvaluemaps/{map}/entries/{key}', async (req, scope) => {
    const map = await findMap(db, req.params.map);
    return { body: entryResource(await storeFor(deps, req).kvm.delete(scopeOf(scope), map.name, req.params.key)) };
  }, { query: SCOPE_QUERY });
}
