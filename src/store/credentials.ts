// App credentials (API keys): only hashes are stored; the key and secret are returned once, when issued.
import type { Selectable } from 'kysely';
import { decodeJson, decodeNullableTimestamp, decodeTimestamp, encodeJson, encodeTimestamp } from './codec.js';
import { conflictOnUnique } from './constraint-errors.js';
import { NotFoundError } from './errors.js';
import { generateApiKey, generateKeyId, generateSecret, hashKey } from './keys.js';
import { paginate, readInPages, type Page, type PageRequest } from './pagination.js';
import type { CredentialsTable } from './schema.js';
import type { IdentityRefs } from './change-feed.js';
import { ownedAppIds } from './owned-apps.js';
import type { Session, WriteContext } from './session.js';

export type CredentialStatus = 'approved' | 'pending' | 'revoked';

/** Apigee's per-key product grant, `{apiproduct, status}`. */
export interface ApiProductGrant {
  apiproduct: string;
  status: CredentialStatus;
}

export interface Credential {
  /** Non-secret identifier, used in admin URLs. */
  keyId: string;
  appId: string;
  keyHash: string;
  secretHash: string | null;
  status: CredentialStatus;
  /** In the app's order: the first grant whose operation set covers a request decides. */
  apiProducts: ApiProductGrant[];
  issuedAt: string;
  expiresAt: string | null;
  createdAt: string;
}

export interface IssueCredentialInput {
  appId: string;
  apiProducts?: ApiProductGrant[];
  status?: CredentialStatus;
  /** Any date string `Date` parses; stored and returned as ISO-8601 (null: never expires). */
  expiresAt?: string | null;
  /** Import an existing key instead of generating one. */
  consumerKey?: string;
  /** Import an existing secret; `null` issues the key without a secret. */
  consumerSecret?: string | null;
  /** For imports: when the key was first issued elsewhere. */
  issuedAt?: string;
}

export interface IssuedCredential {
  credential: Credential;
  /** The only time the plain key is available. */
  consumerKey: string;
  consumerSecret: string | null;
}

const RESOURCE = 'credential';

export class Credentials {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async find(keyId: string): Promise<Credential | undefined> {
    const row = await this.#session.db.selectFrom('credentials').selectAll().where('key_id', '=', keyId).executeTakeFirst();
    return row && toCredential(row);
  }

  async get(keyId: string): Promise<Credential> {
    const credential = await this.find(keyId);
    if (!credential) throw new NotFoundError(RESOURCE, keyId);
    return credential;
  }

  /** Looks a presented key up by its hash. */
  async findByKey(consumerKey: string): Promise<Credential | undefined> {
    const row = await this.#session.db
      .selectFrom('credentials')
      .selectAll()
      .where('key_hash', '=', hashKey(consumerKey))
      .executeTakeFirst();
    return row && toCredential(row);
  }

  /** In issue order. */
  listForApp(appId: string, page: PageRequest = {}): Promise<Page<Credential>> {
    const query = this.#session.db.selectFrom('credentials').selectAll().where('app_id', '=', appId);
    return paginate(query, { columns: ['created_at', 'key_id'], kinds: { created_at: 'timestamp' } }, page, toCredential);
  }

  /** Every key of an app, in issue order: nothing limits how many an app holds, so no page can promise all of them. */
  async listAllForApp(appId: string): Promise<Credential[]> {
    const rows = await this.#session.db.selectFrom('credentials').selectAll().where('app_id', '=', appId).orderBy('created_at').orderBy('key_id').execute();
    return rows.map(toCredential);
  }

  /**
   * The products the app's keys hold, each once, in issue order: what a key issued without a list of its own gets.
   * Locks the app as `issue` does, so no key is issued or re-granted between this read and the caller's issue.
   * @throws NotFoundError.
   */
  productsOfApp(appId: string): Promise<string[]> {
    return this.#session.write(async (w) => {
      await lockApp(w, appId);
      const rows = await w.db.selectFrom('credentials').select('api_products').where('app_id', '=', appId).orderBy('created_at').orderBy('key_id').execute();
      return [...new Set(rows.flatMap((r) => decodeJson<ApiProductGrant[]>(r.api_products).map((g) => g.apiproduct)))];
    });
  }

  /** Every key of the apps `refs` names and of every app of the developers it names, and the keys it names. */
  async listOwned(refs: IdentityRefs): Promise<Credential[]> {
    const db = this.#session.db;
    const keyIds = refs.keyIds ?? [];
    const rows = await db
      .selectFrom('credentials')
      .selectAll()
      .where((eb) =>
        eb.or([
          ...(refs.appIds.length + refs.developerIds.length > 0 ? [eb('app_id', 'in', ownedAppIds(db, refs))] : []),
          ...(keyIds.length > 0 ? [eb('key_id', 'in', keyIds)] : []),
        ]),
      )
      .execute();
    return rows.map(toCredential);
  }

  /** Every key, in pages of one consistent view (see readInPages); `progress` is called after each page. */
  listAll(progress?: () => void): Promise<Credential[]> {
    return this.#session.snapshot((s) => readInPages(s.db.selectFrom('credentials').selectAll(), ['key_id'], toCredential, { dialect: s.core.dialect, progress }));
  }

  /**
   * Issues a key (and secret) for an app, or imports given ones.
   * @throws NotFoundError when the app does not exist; ConflictError when an imported key is already in use.
   */
  issue(input: IssueCredentialInput): Promise<IssuedCredential> {
    return this.#session.write(async (w) => {
      await lockApp(w, input.appId);
      const consumerKey = input.consumerKey ?? generateApiKey();
      const consumerSecret = input.consumerSecret === undefined ? generateSecret() : input.consumerSecret;
      const keyId = generateKeyId();
      const apiProducts = input.apiProducts ?? [];
      const row = await conflictOnUnique(
        RESOURCE,
        input.consumerKey === undefined ? keyId : 'imported consumerKey',
        w.db
          .insertInto('credentials')
          .values({
            key_id: keyId,
            app_id: input.appId,
            key_hash: hashKey(consumerKey),
            secret_hash: consumerSecret === null ? null : hashKey(consumerSecret),
            status: input.status ?? 'approved',
            api_products: encodeJson(apiProducts),
            issued_at: input.issuedAt === undefined ? w.now : encodeTimestamp(input.issuedAt),
            expires_at: input.expiresAt == null ? null : encodeTimestamp(input.expiresAt),
            created_at: w.now,
          })
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      await w.audit({
        action: 'create',
        resourceType: RESOURCE,
        resourceName: keyId,
        owner: { appId: input.appId, keyId },
        // The status too: an import may create a key already revoked, which the audit must show.
        detail: { appId: input.appId, apiProducts: apiProducts.map((g) => g.apiproduct), status: row.status, imported: input.consumerKey !== undefined },
      });
      return { credential: toCredential(row), consumerKey, consumerSecret };
    });
  }

  /** Apigee's `?action=approve|revoke` on a key. @throws NotFoundError. */
  setStatus(keyId: string, status: CredentialStatus): Promise<Credential> {
    return this.#update(keyId, { status }, { status });
  }

  /**
   * Gives every key of the app `grants`, in that order; a grant a key already holds keeps its status (an approval
   * stays approved). The app is locked first, as `issue` locks it, so a key issued meanwhile is re-granted too or
   * issued after; each key is read locked, so an approval committed meanwhile is merged rather than overwritten.
   * @throws NotFoundError.
   */
  regrantApp(appId: string, grants: readonly ApiProductGrant[]): Promise<void> {
    return this.#session.write(async (w) => {
      await lockApp(w, appId);
      const query = w.db.selectFrom('credentials').selectAll().where('app_id', '=', appId).orderBy('created_at').orderBy('key_id');
      for (const key of (await w.forUpdate(query).execute()).map(toCredential)) {
        const merged = grants.map((g) => key.apiProducts.find((held) => held.apiproduct === g.apiproduct) ?? g);
        await this.#write(w, key.keyId, { api_products: encodeJson(merged) }, { apiProducts: merged.map((g) => g.apiproduct) });
      }
    });
  }

  /** Approves or revokes one product on one key. @throws NotFoundError for an unknown key or a product it lacks. */
  setProductStatus(keyId: string, apiproduct: string, status: CredentialStatus): Promise<Credential> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, keyId);
      if (!current.apiProducts.some((g) => g.apiproduct === apiproduct)) throw new NotFoundError('apiproduct', apiproduct);
      const grants = current.apiProducts.map((g) => (g.apiproduct === apiproduct ? { apiproduct, status } : g));
      return this.#write(w, keyId, { api_products: encodeJson(grants) }, { apiproduct, status });
    });
  }

  /** @throws NotFoundError. */
  delete(keyId: string): Promise<Credential> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, keyId);
      await w.db.deleteFrom('credentials').where('key_id', '=', keyId).execute();
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: keyId, detail: { appId: current.appId }, owner: { appId: current.appId, keyId } });
      return current;
    });
  }

  #update(keyId: string, set: CredentialUpdate, detail: Record<string, unknown>): Promise<Credential> {
    return this.#session.write(async (w) => {
      await this.#locked(w, keyId);
      return this.#write(w, keyId, set, detail);
    });
  }

  async #write(w: WriteContext, keyId: string, set: CredentialUpdate, detail: Record<string, unknown>): Promise<Credential> {
    const row = await w.db.updateTable('credentials').set(set).where('key_id', '=', keyId).returningAll().executeTakeFirstOrThrow();
    await w.audit({ action: 'update', resourceType: RESOURCE, resourceName: keyId, detail, owner: { appId: row.app_id, keyId } });
    return toCredential(row);
  }

  async #locked(w: WriteContext, keyId: string): Promise<Credential> {
    const row = await w.forUpdate(w.db.selectFrom('credentials').selectAll().where('key_id', '=', keyId)).executeTakeFirst();
    if (!row) throw new NotFoundError(RESOURCE, keyId);
    return toCredential(row);
  }
}

/** Locks an app's row (SQLite serialises writers anyway): the lock every change to an app's set of keys takes. */
async function lockApp(w: WriteContext, appId: string): Promise<void> {
  const app = await w.forUpdate(w.db.selectFrom('apps').select('id').where('id', '=', appId)).executeTakeFirst();
  if (!app) throw new NotFoundError('app', appId);
}

/**
 * Writes a `delete` audit row (saying `reason`) for each key of one app or of every app of one developer, which the
 * caller is about to delete: ON DELETE CASCADE would remove the keys without a trace. The caller holds the apps'
 * locks, so no key is issued in between.
 */
export async function auditKeysDeletedWith(w: WriteContext, owner: { appId: string } | { developerId: string }, reason: string): Promise<void> {
  let query = w.db.selectFrom('credentials').select(['key_id', 'app_id']);
  if ('appId' in owner) query = query.where('app_id', '=', owner.appId);
  else query = query.where('app_id', 'in', w.db.selectFrom('apps').select('id').where('developer_id', '=', owner.developerId));
  for (const row of await query.orderBy('created_at').orderBy('key_id').execute()) {
    await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: row.key_id, detail: { appId: row.app_id, reason }, owner: { appId: row.app_id } });
  }
}

/**
 * Removes the grants of a product from every key that holds one, each with its audit row (saying `reason`), in the
 * caller's transaction: grants name products by name, so left behind they would come back, approved, with any
 * product created later under that name, whatever its approvalType. Returns how many keys lost a grant.
 */
export async function dropProductGrants(w: WriteContext, apiproduct: string, reason: string): Promise<number> {
  // Only the holders are read (credential_products indexes them), locked oldest first as regrantApp locks an app's
  // keys: taken in one order, a delete and a re-grant on PostgreSQL cannot each hold a key the other waits for.
  const holders = w.db.selectFrom('credential_products').select('key_id').where('apiproduct', '=', apiproduct);
  const query = w.db.selectFrom('credentials').select(['key_id', 'api_products']).where('key_id', 'in', holders).orderBy('created_at').orderBy('key_id');
  let changed = 0;
  for (const row of await w.forUpdate(query).execute()) {
    const grants = decodeJson<ApiProductGrant[]>(row.api_products);
    const kept = grants.filter((g) => g.apiproduct !== apiproduct);
    // A re-grant that took it away while the lock was awaited: PostgreSQL rechecks the locked row, not the index.
    if (kept.length === grants.length) continue;
    await w.db.updateTable('credentials').set({ api_products: encodeJson(kept) }).where('key_id', '=', row.key_id).execute();
    await w.audit({ action: 'update', resourceType: RESOURCE, resourceName: row.key_id, detail: { removedApiProduct: apiproduct, reason } });
    changed++;
  }
  return changed;
}

type CredentialUpdate = { status?: string; api_products?: string };

function toCredential(row: Selectable<CredentialsTable>): Credential {
  return {
    keyId: row.key_id,
    appId: row.app_id,
    keyHash: row.key_hash,
    secretHash: row.secret_hash,
    status: row.status as CredentialStatus,
    apiProducts: decodeJson<ApiProductGrant[]>(row.api_products),
    issuedAt: decodeTimestamp(row.issued_at),
    expiresAt: decodeNullableTimestamp(row.expires_at),
    createdAt: decodeTimestamp(row.created_at),
  };
}
