// Objects declared in --config files are read-only through the admin API (409): change them in the files.
import { AdminError } from '../gateway/admin-router.js';
import type { StoreView } from '../store/index.js';
import type { ApimAdminDeps } from './admin-deps.js';
import { storedOwner } from './manifest-tables.js';
import { requestDocumentPath, type RequestTarget } from './manifest-documents.js';

/** Declared in a file now (deps.fileOwned), or stored by the config loader with owner `file`. */
export async function isFileOwned(store: StoreView, deps: ApimAdminDeps, kind: string, name: string): Promise<boolean> {
  return deps.fileOwned(kind, name) || (await storedOwner(store, kind, name)) === 'file';
}

function fileOwnedError(details: { path: string; message: string }[]): AdminError {
  return new AdminError(409, 'file_owned', 'Declared in --config files: change it there, not through the admin API', details);
}

export async function refuseFileOwned(store: StoreView, deps: ApimAdminDeps, kind: string, name: string): Promise<void> {
  if (await isFileOwned(store, deps, kind, name)) throw fileOwnedError([{ path: 'name', message: `${kind} "${name}" is declared in --config files` }]);
}

/** 409 naming every request document (`[i]`, in request order) whose object --config files declare. */
export async function refuseFileOwnedDocuments(store: StoreView, deps: ApimAdminDeps, targets: readonly RequestTarget[]): Promise<void> {
  const owned: { path: string; message: string }[] = [];
  for (const [i, { kind, name }] of targets.entries()) {
    if (await isFileOwned(store, deps, kind, name)) owned.push({ path: requestDocumentPath(targets, i), message: `${kind}/${name} is declared in --config files` });
  }
  if (owned.length > 0) throw fileOwnedError(owned);
}
