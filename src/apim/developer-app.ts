// Resolving the {email}/apps/{app}/keys/{keyId} path parameters to records (404 for any part that does not exist).
import { NotFoundError, type App, type Credential, type StoreView } from '../store/index.js';

export async function findApp(store: StoreView, params: Record<string, string>): Promise<App> {
  const developer = await store.developers.get(params.email);
  return store.apps.getByName(developer.id, params.app);
}

/** The app, locked until the transaction ends: taken before anything else by a change to the app's keys. */
export async function lockApp(tx: StoreView, params: Record<string, string>): Promise<App> {
  return tx.apps.lock((await findApp(tx, params)).id);
}

/** A key of this app; another app's key is as unknown here as a key that does not exist. */
export async function findKey(store: StoreView, app: App, keyId: string): Promise<Credential> {
  const key = await store.credentials.find(keyId);
  if (!key || key.appId !== app.id) throw new NotFoundError('credential', keyId);
  return key;
}
