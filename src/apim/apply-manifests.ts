// Applying and deleting manifests all or none: one store transaction, kept only if the policies still build; a dry
// run performs the very same writes and rolls them back.
import { NotFoundError, type ApplyOutcome, type StoreView } from '../store/index.js';
import type { ApimAdminDeps } from './admin-deps.js';
import { invalid, type FieldProblem } from './admin-input.js';
import { checkApplyGovernance } from './apply-governance.js';
import { kvmMapProblems } from './apply-kvm.js';
import type { KvmCipher } from './kvm-cipher.js';
import { refuseFileOwnedDocuments } from './file-ownership.js';
import { requestDocumentPath, type ApimDocument, type RequestTarget as Target } from './manifest-documents.js';
import { deleteDocument, storeDocument } from './manifest-tables.js';

export interface ApplyResult {
  kind: string;
  name: string;
  outcome: ApplyOutcome;
}

export interface ApplyAnswer {
  results: ApplyResult[];
  /** Template-rule violations of objects applied before (a rule changed under them); they stay applied. */
  violations: string[];
}

/** Thrown out of the transaction to roll a dry run back, carrying what the writes would have done. */
class DryRunRollback<T> extends Error {
  constructor(readonly answer: T) {
    super('dry run');
  }
}

/**
 * How the policy engine names a manifest the admin API stored: `admin-api document <n> (<Kind>/<name>)`, where <n>
 * counts the store's manifests, not the request's documents; a detail names it by kind and name alone.
 */
const STORED_MANIFEST = /admin-api document \d+ \(([^)]+)\)/g;

/** `spec.templates[1].condition`, as the engine writes a field path before its message. */
const FIELD_PATH = /^(?:kind|metadata|spec)(?:\.[^\s.:[\]]+|\[\d+\])*(?=: )/;

/**
 * A build problem as a detail pointing at the request document it is about, and at the field when the problem starts
 * with that document (`[2].spec.templates[1].condition`); one about another object (a stored template naming a policy
 * this request changed) points at a request document it mentions, else has no path.
 */
function detailOf(problem: string, targets: readonly Target[], documents: ReadonlyMap<string, number>): FieldProblem {
  const message = problem.replace(STORED_MANIFEST, '$1');
  const mention = [...problem.matchAll(STORED_MANIFEST)].find((m) => documents.has(m[1]));
  if (!mention) return { path: '', message };
  const path = requestDocumentPath(targets, documents.get(mention[1]) as number);
  // A problem that starts with the document is about it: its field goes into the path, the document's name out.
  if (mention.index !== 0 || !message.startsWith(`${mention[1]}: `)) return { path, message };
  const rest = message.slice(mention[1].length + 2);
  const field = FIELD_PATH.exec(rest)?.[0];
  return field ? { path: `${path}.${field}`, message: rest.slice(field.length + 2) } : { path, message: rest };
}

/**
 * Runs `write` over the `targets` in one store transaction and keeps it only if the policies still build from the
 * result: a stored manifest the engine cannot build (an OpenAPI pattern ajv refuses, a template naming a deleted
 * policy) would otherwise be accepted and then stop every later start. Nor may a product's own template end up
 * running for every request (template-scope.ts). Objects --config files declare are refused
 * first (409). A refusal (400) says `refused` and points each problem at its request document. A dry run performs
 * the writes and rolls them back.
 */
async function checkedWrite<T>(
  store: StoreView,
  deps: ApimAdminDeps,
  targets: readonly Target[],
  opts: { dryRun: boolean; refused: string },
  write: (tx: StoreView) => Promise<T>,
): Promise<T> {
  const documents = new Map(targets.map((t, i) => [`${t.kind}/${t.name}`, i]));
  try {
    return await store.transaction(async (tx) => {
      // Two requests that each build the policies from their own view could both commit a store that does not
      // build (a template naming a policy the other deletes): they take turns.
      await tx.serialize('policies');
      await refuseFileOwnedDocuments(tx, deps, targets);
      const before = await deps.policyManifests?.(tx);
      const answer = await write(tx);
      const problems = (await deps.compileProblems?.(tx, before)) ?? [];
      if (problems.length > 0) throw invalid(opts.refused, problems.map((problem) => detailOf(problem, targets, documents)));
      if (opts.dryRun) throw new DryRunRollback(answer);
      return answer;
    });
  } catch (err) {
    if (err instanceof DryRunRollback) return err.answer as T;
    throw err;
  }
}

/** `kvmCipher`: TOLLGATE_KVM_KEY's, which encrypted key-value maps need (null: unset). */
export function applyDocuments(
  store: StoreView,
  deps: ApimAdminDeps,
  documents: readonly ApimDocument[],
  opts: { dryRun: boolean; kvmCipher: KvmCipher | null },
): Promise<ApplyAnswer> {
  const targets = documents.map((d) => ({ kind: d.manifest.kind, name: d.manifest.metadata.name, index: d.index }));
  const refused = `the policies would be broken by ${documents.length === 1 ? 'this manifest' : 'these manifests'} (the details say how); nothing was applied`;
  return checkedWrite(store, deps, targets, { dryRun: opts.dryRun, refused }, async (tx) => {
    const governance = await checkApplyGovernance(tx, deps, documents);
    if (governance.refused.length > 0) {
      throw invalid(`${governance.refused.length} template rule violation${governance.refused.length === 1 ? '' : 's'}; nothing was applied`, governance.refused);
    }
    const maps = await kvmMapProblems(tx, documents, opts.kvmCipher);
    if (maps.length > 0) throw invalid(`${maps.length} key-value map problem${maps.length === 1 ? '' : 's'}; nothing was applied`, maps);
    const results: ApplyResult[] = [];
    for (const doc of documents) results.push({ kind: doc.manifest.kind, name: doc.manifest.metadata.name, outcome: await storeDocument(tx, doc) });
    return { results, violations: governance.reported };
  });
}

export interface DeleteResult {
  kind: string;
  name: string;
  outcome: 'deleted' | 'not_found';
}

/**
 * Deletes every named object, all or none (`not_found` for one already gone, so deleting by the same file again
 * succeeds); refused when the policies would not build without them (a template still naming a deleted policy),
 * and, unless `force`, when it is the APIMExtensionPolicy: without it every request is served with no key, quota
 * or policy checked, which one mistaken delete should not do.
 */
export function deleteDocuments(
  store: StoreView,
  deps: ApimAdminDeps,
  targets: readonly Target[],
  opts: { dryRun: boolean; force: boolean },
): Promise<DeleteResult[]> {
  const refused = `the policies would be broken without ${targets.length === 1 ? 'this object' : 'these objects'} (the details say how); nothing was deleted`;
  return checkedWrite(store, deps, targets, { dryRun: opts.dryRun, refused }, async (tx) => {
    if (!opts.force) {
      const stored: { path: string; message: string }[] = [];
      for (const [i, { kind, name }] of targets.entries()) {
        if (kind === 'APIMExtensionPolicy' && (await tx.manifests.find(kind, name))) {
          stored.push({ path: requestDocumentPath(targets, i), message: 'every request would then be served without keys, quotas or policies; delete with force=true (tollgate delete --force) to do so' });
        }
      }
      if (stored.length > 0) throw invalid('Deleting the APIMExtensionPolicy turns API management off; nothing was deleted', stored);
    }
    const results: DeleteResult[] = [];
    for (const { kind, name } of targets) {
      try {
        await deleteDocument(tx, kind, name);
        results.push({ kind, name, outcome: 'deleted' });
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        results.push({ kind, name, outcome: 'not_found' });
      }
    }
    return results;
  });
}
