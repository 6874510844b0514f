// Developers: the people (or teams) who own apps; addressed by id or, as in Apigee's paths, by email.
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { decodeJson, decodeTimestamp, encodeJson } from './codec.js';
import type { Attribute } from './common-types.js';
import { conflictOnUnique } from './constraint-errors.js';
import { auditKeysDeletedWith } from './credentials.js';
import { NotFoundError } from './errors.js';
import { paginate, readInPages, type Page, type PageRequest } from './pagination.js';
import { applyPatch, patchedFields, statusOf } from './patch.js';
import type { DevelopersTable } from './schema.js';
import type { Session, WriteContext } from './session.js';

export type DeveloperStatus = 'active' | 'inactive';

export interface Developer {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  userName: string;
  status: DeveloperStatus;
  attributes: Attribute[];
  createdAt: string;
  updatedAt: string;
}

export interface DeveloperInput {
  email: string;
  firstName?: string;
  lastName?: string;
  userName?: string;
  status?: DeveloperStatus;
  attributes?: Attribute[];
}

export type DeveloperPatch = Partial<DeveloperInput>;

const RESOURCE = 'developer';

/** Emails are unique regardless of case; the key is folded in JavaScript so every backend agrees on it. */
function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

export class Developers {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  /** `idOrEmail`: a developer id, or an email (anything with an @), matched case-insensitively. */
  async find(idOrEmail: string): Promise<Developer | undefined> {
    const row = await this.#session.db
      .selectFrom('developers')
      .selectAll()
      .where(...matchRef(idOrEmail))
      .executeTakeFirst();
    return row && toDeveloper(row);
  }

  async get(idOrEmail: string): Promise<Developer> {
    const developer = await this.find(idOrEmail);
    if (!developer) throw new NotFoundError(RESOURCE, idOrEmail);
    return developer;
  }

  /** Ordered by email. */
  list(page: PageRequest = {}): Promise<Page<Developer>> {
    return paginate(this.#session.db.selectFrom('developers').selectAll(), { columns: ['email_key'] }, page, toDeveloper);
  }

  /** Every developer, in pages of one consistent view (see readInPages); `progress` is called after each page. */
  listAll(progress?: () => void): Promise<Developer[]> {
    return this.#session.snapshot((s) => readInPages(s.db.selectFrom('developers').selectAll(), ['id'], toDeveloper, { dialect: s.core.dialect, progress }));
  }

  /** The developers of these ids that exist. */
  async listByIds(ids: readonly string[]): Promise<Developer[]> {
    if (ids.length === 0) return [];
    const rows = await this.#session.db.selectFrom('developers').selectAll().where('id', 'in', ids).execute();
    return rows.map(toDeveloper);
  }

  /** @throws ConflictError when the email (in any case) is taken. */
  create(input: DeveloperInput): Promise<Developer> {
    return this.#session.write(async (w) => {
      const developer: Developer = {
        id: randomUUID(),
        email: input.email.trim(),
        firstName: input.firstName ?? '',
        lastName: input.lastName ?? '',
        userName: input.userName ?? '',
        status: input.status ?? 'active',
        attributes: input.attributes ?? [],
        createdAt: w.now,
        updatedAt: w.now,
      };
      const row = await conflictOnUnique(
        RESOURCE,
        developer.email,
        w.db
          .insertInto('developers')
          .values({ id: developer.id, ...toRow(developer), created_at: developer.createdAt })
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      await w.audit({ action: 'create', resourceType: RESOURCE, resourceName: developer.email, detail: { id: developer.id }, owner: { developerId: developer.id } });
      return toDeveloper(row);
    });
  }

  /** @throws NotFoundError, or ConflictError when changing the email to a taken one. */
  update(idOrEmail: string, patch: DeveloperPatch): Promise<Developer> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, idOrEmail);
      const next = applyPatch(current, { ...patch, email: patch.email?.trim(), updatedAt: w.now });
      const row = await conflictOnUnique(
        RESOURCE,
        next.email,
        w.db.updateTable('developers').set(toRow(next)).where('id', '=', current.id).returningAll().executeTakeFirstOrThrow(),
      );
      await w.audit({ action: 'update', resourceType: RESOURCE, resourceName: next.email, detail: { id: current.id, fields: patchedFields(patch), ...statusOf(patch) }, owner: { developerId: current.id } });
      return toDeveloper(row);
    });
  }

  /** Apigee's `?action=active|inactive`. */
  setStatus(idOrEmail: string, status: DeveloperStatus): Promise<Developer> {
    return this.update(idOrEmail, { status });
  }

  /** Deletes the developer with its apps and their credentials, each with its own audit row. @throws NotFoundError. */
  delete(idOrEmail: string): Promise<Developer> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, idOrEmail);
      // The developer's lock keeps new apps out; the apps' locks keep new keys out (credentials.issue takes them).
      const apps = await w.forUpdate(w.db.selectFrom('apps').select(['id', 'name']).where('developer_id', '=', current.id).orderBy('id')).execute();
      const reason = 'developer deleted';
      const owner = { developerId: current.id };
      for (const app of apps) await w.audit({ action: 'delete', resourceType: 'app', resourceName: app.id, detail: { developerId: current.id, name: app.name, reason }, owner });
      await auditKeysDeletedWith(w, { developerId: current.id }, reason);
      await w.db.deleteFrom('developers').where('id', '=', current.id).execute();
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: current.email, detail: { id: current.id }, owner });
      w.touched('app', owner);
      w.touched('credential', owner);
      return current;
    });
  }

  async #locked(w: WriteContext, idOrEmail: string): Promise<Developer> {
    const query = w.db.selectFrom('developers').selectAll().where(...matchRef(idOrEmail));
    const row = await w.forUpdate(query).executeTakeFirst();
    if (!row) throw new NotFoundError(RESOURCE, idOrEmail);
    return toDeveloper(row);
  }
}

function matchRef(idOrEmail: string): ['id' | 'email_key', '=', string] {
  return idOrEmail.includes('@') ? ['email_key', '=', emailKey(idOrEmail)] : ['id', '=', idOrEmail];
}

function toRow(d: Developer) {
  return {
    email: d.email,
    email_key: emailKey(d.email),
    first_name: d.firstName,
    last_name: d.lastName,
    user_name: d.userName,
    status: d.status,
    attributes: encodeJson(d.attributes),
    updated_at: d.updatedAt,
  };
}

function toDeveloper(row: Selectable<DevelopersTable>): Developer {
  return {
    id: row.id,
    email: row.email,
    firstName: row.first_name,
    lastName: row.last_name,
    userName: row.user_name,
    status: row.status as DeveloperStatus,
    attributes: decodeJson<Attribute[]>(row.attributes),
    createdAt: decodeTimestamp(row.created_at),
    updatedAt: decodeTimestamp(row.updated_at),
  };
}
