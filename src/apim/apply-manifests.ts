// Applying manifests all or none: one store transaction; a dry run performs the very same writes and rolls them back.
import type { ApplyOutcome, StoreView } from '../store/index.js';
import type { ApimAdminDeps } from './admin-deps.js';
import { invalid } from './admin-input.js';
import { checkApplyGovernance } from './apply-governance.js';
import { fileOwnedError, isFileOwned } from './file-ownership.js';
import type { ApimDocument } from './manifest-documents.js';
import { storeDocument } from './manifest-tables.js';

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
class DryRunRollback extends Error {
  constructor(readonly answer: ApplyAnswer) {
    super('dry run');
  }
}

/**
 * The request document a build problem is about (`[i]`): problems name the manifest they come from as `(Kind/name)`;
 * one about another object (a stored template naming a policy this apply changed) has no path.
 */
function pathOf(message: string, documents: readonly ApimDocument[]): string {
  const i = documents.findIndex((d) => message.includes(`(${d.manifest.kind}/${d.manifest.metadata.name})`));
  return i === -1 ? '' : `[${i}]`;
}

export async function applyDocuments(
  store: StoreView,
  deps: ApimAdminDeps,
  documents: readonly ApimDocument[],
  opts: { dryRun: boolean },
): Promise<ApplyAnswer> {
  try {
    return await store.transaction(async (tx) => {
      const owned: { path: string; message: string }[] = [];
      for (const [i, { manifest: m }] of documents.entries()) {
        if (await isFileOwned(tx, deps, m.kind, m.metadata.name)) {
          owned.push({ path: `[${i}]`, message: `${m.kind}/${m.metadata.name} is declared in --config files` });
        }
      }
      if (owned.length > 0) throw fileOwnedError(owned);
      const governance = await checkApplyGovernance(tx, deps, documents);
      if (governance.refused.length > 0) {
        throw invalid(`${governance.refused.length} template rule violation${governance.refused.length === 1 ? '' : 's'}; nothing was applied`, governance.refused);
      }
      const results: ApplyResult[] = [];
      for (const doc of documents) {
        results.push({ kind: doc.manifest.kind, name: doc.manifest.metadata.name, outcome: await storeDocument(tx, doc) });
      }
      const problems = (await deps.compileProblems?.(tx)) ?? [];
      if (problems.length > 0) {
        throw invalid(`the policies cannot be built with ${documents.length === 1 ? 'this manifest' : 'these manifests'}; nothing was applied`, problems.map((message) => ({ path: pathOf(message, documents), message })));
      }
      const answer = { results, violations: governance.reported };
      if (opts.dryRun) throw new DryRunRollback(answer);
      return answer;
    });
  } catch (err) {
    if (err instanceof DryRunRollback) return err.answer;
    throw err;
  }
}
