// Declarative objects of the other API-management kinds (APIMExtensionPolicy, ApimTemplate, policies), by (kind, name).
import type { Selectable } from 'kysely';
import { decodeJson, decodeTimestamp, encodeJson, type JsonObject } from './codec.js';
import type { Applied, Owner } from './common-types.js';
import { contentHash } from './content-hash.js';
import { conflictOnUnique } from './constraint-errors.js';
import { NotFoundError } from './errors.js';
import { paginate, type Page, type PageRequest } from './pagination.js';
import type { ManifestsTable } from './schema.js';
import type { Session, WriteContext } from './session.js';

export interface ManifestInput {
  kind: string;
  name: string;
  apiVersion: string;
  spec: JsonObject;
  owner?: Owner;
}

export interface Manifest {
  kind: string;
  name: string;
  apiVersion: string;
  spec: JsonObject;
  owner: Owner;
  contentHash: string;
  createdAt: string;
  updatedAt: string;
}

const RESOURCE = 'manifest';

export class Manifests {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async find(kind: string, name: string): Promise<Manifest | undefined> {
    const row = await this.#session.db
      .selectFrom('manifests')
      .selectAll()
      .where('kind', '=', kind)
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toManifest(row);
  }

  async get(kind: string, name: string): Promise<Manifest> {
    const manifest = await this.find(kind, name);
    if (!manifest) throw new NotFoundError(kind, name);
    return manifest;
  }

  /** Ordered by (kind, name); `kind` narrows to one kind. */
  list(filter: { kind?: string } = {}, page: PageRequest = {}): Promise<Page<Manifest>> {
    let query = this.#session.db.selectFrom('manifests').selectAll();
    if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
    return paginate(query, { columns: ['kind', 'name'] }, page, toManifest);
  }

  async listAll(): Promise<Manifest[]> {
    const rows = await this.#session.db.selectFrom('manifests').selectAll().orderBy('kind').orderBy('name').execute();
    return rows.map(toManifest);
  }

  /** Create or replace; identical content (apiVersion, spec, owner) is `unchanged` and writes nothing. */
  apply(input: ManifestInput): Promise<Applied<Manifest>> {
    return this.#session.write(async (w) => {
      const owner = input.owner ?? 'api';
      const hash = contentHash({ apiVersion: input.apiVersion, spec: input.spec, owner });
      const current = await this.#locked(w, input.kind, input.name);
      if (current?.contentHash === hash) return { outcome: 'unchanged', item: current };
      const values = { api_version: input.apiVersion, spec: encodeJson(input.spec), owner, content_hash: hash, updated_at: w.now };
      const row = await w.db
        .insertInto('manifests')
        .values({ kind: input.kind, name: input.name, ...values, created_at: w.now })
        .onConflict((oc) => oc.columns(['kind', 'name']).doUpdateSet(values))
        .returningAll()
        .executeTakeFirstOrThrow();
      const outcome = current ? 'updated' : 'created';
      await w.audit({
        action: outcome === 'created' ? 'create' : 'update',
        resourceType: RESOURCE,
        resourceName: `${input.kind}/${input.name}`,
        detail: { owner, apiVersion: input.apiVersion },
      });
      return { outcome, item: toManifest(row) };
    });
  }

  /**
   * Creates the object; unlike apply, an existing one (even with identical content) is refused by the primary key,
   * so of two concurrent creates exactly one succeeds. @throws ConflictError.
   */
  create(input: ManifestInput): Promise<Manifest> {
    return this.#session.write(async (w) => {
      const owner = input.owner ?? 'api';
      const hash = contentHash({ apiVersion: input.apiVersion, spec: input.spec, owner });
      const row = await conflictOnUnique(
        RESOURCE,
        `${input.kind}/${input.name}`,
        w.db
          .insertInto('manifests')
          .values({ kind: input.kind, name: input.name, api_version: input.apiVersion, spec: encodeJson(input.spec), owner, content_hash: hash, created_at: w.now, updated_at: w.now })
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      await w.audit({ action: 'create', resourceType: RESOURCE, resourceName: `${input.kind}/${input.name}`, detail: { owner, apiVersion: input.apiVersion } });
      return toManifest(row);
    });
  }

  /** Returns what was deleted. @throws NotFoundError. */
  delete(kind: string, name: string): Promise<Manifest> {
    return this.#session.write(async (w) => {
      const deleted = await w.db
        .deleteFrom('manifests')
        .where('kind', '=', kind)
        .where('name', '=', name)
        .returningAll()
        .executeTakeFirst();
      if (!deleted) throw new NotFoundError(kind, name);
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: `${kind}/${name}` });
      return toManifest(deleted);
    });
  }

  async #locked(w: WriteContext, kind: string, name: string): Promise<Manifest | undefined> {
    const query = w.db.selectFrom('manifests').selectAll().where('kind', '=', kind).where('name', '=', name);
    const row = await w.forUpdate(query).executeTakeFirst();
    return row && toManifest(row);
  }
}

function toManifest(row: Selectable<ManifestsTable>): Manifest {
  return {
    kind: row.kind,
    name: row.name,
    apiVersion: row.api_version,
    spec: decodeJson<JsonObject>(row.spec),
    owner: row.owner as Owner,
    contentHash: row.content_hash,
    createdAt: decodeTimestamp(row.created_at),
    updatedAt: decodeTimestamp(row.updated_at),
  };
}
