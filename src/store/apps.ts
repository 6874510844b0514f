// Developer apps: the unit that holds credentials and product grants; names are unique per developer.
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { decodeJson, decodeTimestamp, encodeJson } from './codec.js';
import type { Attribute } from './common-types.js';
import { conflictOnUnique } from './constraint-errors.js';
import { auditKeysDeletedWith } from './credentials.js';
import { NotFoundError } from './errors.js';
import { paginate, readInPages, type Page, type PageRequest } from './pagination.js';
import { applyPatch, patchedFields, statusOf } from './patch.js';
import type { AppsTable } from './schema.js';
import type { IdentityRefs } from './change-feed.js';
import { ownedAppIds } from './owned-apps.js';
import type { Session, WriteContext } from './session.js';

export type AppStatus = 'approved' | 'revoked' | 'pending';

export interface App {
  id: string;
  developerId: string;
  name: string;
  status: AppStatus;
  attributes: Attribute[];
  callbackUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AppInput {
  name: string;
  status?: AppStatus;
  attributes?: Attribute[];
  callbackUrl?: string | null;
}

/** Apps are not renamed (Apigee does not allow it either): the name is part of their address. */
export type AppPatch = Partial<Omit<AppInput, 'name'>>;

const RESOURCE = 'app';

export class Apps {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async find(appId: string): Promise<App | undefined> {
    const row = await this.#session.db.selectFrom('apps').selectAll().where('id', '=', appId).executeTakeFirst();
    return row && toApp(row);
  }

  async get(appId: string): Promise<App> {
    const app = await this.find(appId);
    if (!app) throw new NotFoundError(RESOURCE, appId);
    return app;
  }

  async findByName(developerId: string, name: string): Promise<App | undefined> {
    const row = await this.#session.db
      .selectFrom('apps')
      .selectAll()
      .where('developer_id', '=', developerId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toApp(row);
  }

  async getByName(developerId: string, name: string): Promise<App> {
    const app = await this.findByName(developerId, name);
    if (!app) throw new NotFoundError(RESOURCE, name);
    return app;
  }

  /** One developer's apps by name, or every app by id. */
  list(filter: { developerId?: string } = {}, page: PageRequest = {}): Promise<Page<App>> {
    const query = this.#session.db.selectFrom('apps').selectAll();
    if (filter.developerId === undefined) return paginate(query, { columns: ['id'] }, page, toApp);
    return paginate(query.where('developer_id', '=', filter.developerId), { columns: ['name'] }, page, toApp);
  }

  /** Every app, in pages of one consistent view (see readInPages); `progress` is called after each page. */
  listAll(progress?: () => void): Promise<App[]> {
    return this.#session.snapshot((s) => readInPages(s.db.selectFrom('apps').selectAll(), ['id'], toApp, { dialect: s.core.dialect, progress }));
  }

  /** The apps `refs` names that exist, and every app of the developers it names. */
  async listOwned(refs: IdentityRefs): Promise<App[]> {
    const rows = await this.#session.db.selectFrom('apps').selectAll().where('id', 'in', ownedAppIds(this.#session.db, refs)).execute();
    return rows.map(toApp);
  }

  /** @throws NotFoundError when the developer does not exist, ConflictError when it has an app of that name. */
  create(developerId: string, input: AppInput): Promise<App> {
    return this.#session.write(async (w) => {
      // Locked so a concurrent delete cannot slip in between this check and the insert (a raw FK error otherwise).
      const developer = await w
        .forUpdate(w.db.selectFrom('developers').select('id').where('id', '=', developerId))
        .executeTakeFirst();
      if (!developer) throw new NotFoundError('developer', developerId);
      const app: App = {
        id: randomUUID(),
        developerId,
        name: input.name,
        status: input.status ?? 'approved',
        attributes: input.attributes ?? [],
        callbackUrl: input.callbackUrl ?? null,
        createdAt: w.now,
        updatedAt: w.now,
      };
      const row = await conflictOnUnique(
        RESOURCE,
        input.name,
        w.db
          .insertInto('apps')
          .values({ id: app.id, developer_id: developerId, name: app.name, ...toRow(app), created_at: w.now })
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      await w.audit({ action: 'create', resourceType: RESOURCE, resourceName: app.id, detail: { developerId, name: app.name }, owner: { appId: app.id } });
      return toApp(row);
    });
  }

  /** @throws NotFoundError. */
  update(appId: string, patch: AppPatch): Promise<App> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, appId);
      const next = applyPatch(current, { ...patch, updatedAt: w.now });
      const row = await w.db.updateTable('apps').set(toRow(next)).where('id', '=', appId).returningAll().executeTakeFirstOrThrow();
      await w.audit({ action: 'update', resourceType: RESOURCE, resourceName: appId, detail: { fields: patchedFields(patch), ...statusOf(patch) }, owner: { appId } });
      return toApp(row);
    });
  }

  /**
   * Locks the app until the transaction ends (SQLite serialises writers anyway). Every change to an app's keys takes
   * this lock (credentials.issue, regrantApp); a change that also reads products (grants lock them shared) takes it
   * first, so those locks are always taken in one order. @throws NotFoundError.
   */
  lock(appId: string): Promise<App> {
    return this.#session.write((w) => this.#locked(w, appId));
  }

  /** Apigee's `?action=approve|revoke`. */
  setStatus(appId: string, status: AppStatus): Promise<App> {
    return this.update(appId, { status });
  }

  /** Deletes the app with its credentials, each with its own audit row. @throws NotFoundError. */
  delete(appId: string): Promise<App> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, appId);
      await auditKeysDeletedWith(w, { appId }, 'app deleted');
      await w.db.deleteFrom('apps').where('id', '=', appId).execute();
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: appId, detail: { developerId: current.developerId, name: current.name }, owner: { appId } });
      w.touched('credential', { appId });
      return current;
    });
  }

  async #locked(w: WriteContext, appId: string): Promise<App> {
    const row = await w.forUpdate(w.db.selectFrom('apps').selectAll().where('id', '=', appId)).executeTakeFirst();
    if (!row) throw new NotFoundError(RESOURCE, appId);
    return toApp(row);
  }
}

function toRow(app: App) {
  return {
    status: app.status,
    attributes: encodeJson(app.attributes),
    callback_url: app.callbackUrl,
    updated_at: app.updatedAt,
  };
}

function toApp(row: Selectable<AppsTable>): App {
  return {
    id: row.id,
    developerId: row.developer_id,
    name: row.name,
    status: row.status as AppStatus,
    attributes: decodeJson<Attribute[]>(row.attributes),
    callbackUrl: row.callback_url,
    createdAt: decodeTimestamp(row.created_at),
    updatedAt: decodeTimestamp(row.updated_at),
  };
}
