// Resolving the {email}/apps/{app}/keys/{keyId} path parameters to records (404 for any part that does not exist).
import { NotFoundError, MAX_PAGE_SIZE, type App, type Credential, type StoreView } from '../store/index.js';

export async function findApp(store: StoreView, params: Record<string, string>): Promise<App> {
  const developer = await store.developers.get(params.email);
  return store.apps.getByName(developer.id, params.app);
}

/** A key of this app; another app's key is as unknown here as a key that does not exist. */
export async function findKey(store: StoreView, app: App, keyId: string): Promise<Credential> {
  const key = await store.credentials.find(keyId);
  if (!key || key.appId !== app.id) throw new NotFoundError('credential', keyId);
  return key;
}

/** Every key of an app, in issue order; an app holds a handful, so one page is all of them. */
export async function appKeys(store: StoreView, appId: string): Promise<Credential[]> {
  return (await store.credentials.listForApp(appId, { pageSize: MAX_PAGE_SIZE })).items;
}
